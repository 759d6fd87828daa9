//! The model zoo (CIFAR variants, 32×32 input). Each function returns the unpruned [`Arch`];
//! widths live in the nodes, so pruned checkpoints carry their own.

use super::arch::{Arch, Node, Shape, Src};

/// CIFAR-10 class names, label order.
pub const CIFAR10_LABELS: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
/// The normalisation the pretrained CIFAR ResNets expect (ImageNet statistics).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Names accepted by [`by_name`].
pub const NAMES: [&str; 9] =
    ["tiny", "resnet8", "resnet18", "resnet20", "resnet32", "resnet44", "resnet50", "resnet56", "vgg16"];

/// The zoo model called `name`, with `classes` outputs.
pub fn by_name(name: &str, classes: usize) -> Option<Arch> {
    let arch = match name {
        "tiny" => tiny(classes),
        "resnet8" => resnet8(classes),
        "vgg16" => vgg16(classes),
        "resnet18" => resnet_projection(false, [2, 2, 2, 2], classes),
        "resnet50" => resnet_projection(true, [3, 4, 6, 3], classes),
        _ => {
            let depth: usize = name.strip_prefix("resnet")?.parse().ok()?;
            if ![20, 32, 44, 56, 110].contains(&depth) {
                return None;
            }
            resnet_cifar(depth, classes)
        }
    };
    Some(arch)
}

/// The zoo model called `name` for `classes` classes at `size`×`size` inputs: the CIFAR layout
/// at 32×32; above it ResNet-18/50 take the ImageNet stem (7×7/2 conv, 3×3/2 max pool) and
/// VGG-16 a global average before its classifier (five pools leave more than 1×1), every model
/// takes ImageNet's normalisation, and the CIFAR ResNets and `tiny` (global average at the end)
/// only change their input.
pub fn for_input(name: &str, classes: usize, size: usize) -> Option<Arch> {
    if size == 32 {
        return by_name(name, classes);
    }
    let mut arch = match name {
        "resnet18" if size >= 64 => resnet_imagenet(false, [2, 2, 2, 2], classes),
        "resnet50" if size >= 64 => resnet_imagenet(true, [3, 4, 6, 3], classes),
        _ => by_name(name, classes)?,
    };
    arch.input = Shape { c: 3, h: size, w: size };
    // The classifier needs 1×1: a fixed average pool becomes a global one (ResNet-8), and a
    // model without one gets one (VGG-16).
    let last = arch.nodes.len() - 1;
    let Node::Dense { input, .. } = arch.nodes[last].clone() else { return None };
    match input {
        Src::Node(j) if matches!(arch.nodes[j], Node::AvgPool { .. }) => {
            if let Node::AvgPool { input: src, .. } = arch.nodes[j].clone() {
                arch.nodes[j] = Node::GlobalAvgPool { input: src };
            }
        }
        Src::Node(j) if matches!(arch.nodes[j], Node::GlobalAvgPool { .. }) => {}
        _ => {
            arch.nodes.insert(last, Node::GlobalAvgPool { input });
            if let Node::Dense { input, .. } = &mut arch.nodes[last + 1] {
                *input = Src::Node(last);
            }
        }
    }
    arch.mean = IMAGENET_MEAN.to_vec();
    arch.std = IMAGENET_STD.to_vec();
    arch.shapes().ok()?;
    Some(arch)
}

/// ResNet-18/50 with the ImageNet stem (He et al. 2016, torchvision's layout): 7×7/2 conv,
/// 3×3/2 max pool (padding 1), then the four stages of [`resnet_projection`].
pub fn resnet_imagenet(bottleneck: bool, blocks: [usize; 4], classes: usize) -> Arch {
    let mut arch = resnet_projection(bottleneck, blocks, classes);
    // The CIFAR stem is node 0 (3×3/1 conv1); make it 7×7/2 and put the pool after it.
    if let Some(Node::Conv { kernel, stride, padding, .. }) = arch.nodes.first_mut() {
        (*kernel, *stride, *padding) = (7, 2, 3);
    }
    let shift = |s: Src| match s {
        Src::Node(j) => Src::Node(j + 1),
        Src::Input => Src::Input,
    };
    for n in arch.nodes.iter_mut().skip(1) {
        match n {
            Node::Conv { input, .. }
            | Node::MaxPool { input, .. }
            | Node::AvgPool { input, .. }
            | Node::GlobalAvgPool { input }
            | Node::ChannelPlace { input, .. }
            | Node::Dense { input, .. } => *input = shift(*input),
            Node::Add { a, b, .. } => (*a, *b) = (shift(*a), shift(*b)),
        }
    }
    // Stage 1 read the stem (node 0): it now reads the pool (node 1), which the shift did.
    arch.nodes.insert(1, Node::MaxPool { input: Src::Node(0), kernel: 3, stride: 2, padding: 1 });
    arch
}

struct Builder {
    nodes: Vec<Node>,
}

impl Builder {
    fn push(&mut self, n: Node) -> Src {
        self.nodes.push(n);
        Src::Node(self.nodes.len() - 1)
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(&mut self, name: &str, bn: &str, input: Src, out: usize, kernel: usize, stride: usize, relu: bool) -> Src {
        self.push(Node::Conv {
            name: name.into(),
            bn: bn.into(),
            input,
            out,
            kernel,
            stride,
            padding: kernel / 2,
            relu,
            pads: None,
        })
    }

    fn finish(self, name: &str, classes: usize, mean: &[f32], std: &[f32]) -> Arch {
        let labels = if classes == 10 {
            CIFAR10_LABELS.iter().map(|s| s.to_string()).collect()
        } else {
            (0..classes).map(|i| format!("class{i}")).collect()
        };
        Arch {
            name: name.into(),
            input: Shape { c: 3, h: 32, w: 32 },
            nodes: self.nodes,
            mean: mean.to_vec(),
            std: std.to_vec(),
            labels,
        }
    }
}

/// A small CNN for the built-in synthetic data: learns in a minute on a CPU, runs on any board.
pub fn tiny(classes: usize) -> Arch {
    let mut b = Builder { nodes: vec![] };
    let x = b.conv("conv1", "bn1", Src::Input, 16, 3, 1, true);
    let x = b.push(Node::MaxPool { input: x, kernel: 2, stride: 2, padding: 0 });
    let x = b.conv("conv2", "bn2", x, 32, 3, 1, true);
    let x = b.push(Node::MaxPool { input: x, kernel: 2, stride: 2, padding: 0 });
    let x = b.conv("conv3", "bn3", x, 32, 3, 1, true);
    let x = b.push(Node::GlobalAvgPool { input: x });
    b.push(Node::Dense { name: "linear".into(), input: x, out: classes, relu: false });
    b.finish("tiny", classes, &[0.5, 0.5, 0.5], &[0.25, 0.25, 0.25])
}

/// CIFAR ResNet-`depth` (He et al. 2016), option-A shortcuts, exactly the layout of
/// `akamaster/pytorch_resnet_cifar10` (`../shared/models/resnet-cifar10`).
pub fn resnet_cifar(depth: usize, classes: usize) -> Arch {
    let blocks = (depth - 2) / 6;
    let mut b = Builder { nodes: vec![] };
    let mut x = b.conv("conv1", "bn1", Src::Input, 16, 3, 1, true);
    let mut planes_in = 16;
    for (stage, planes) in [16usize, 32, 64].into_iter().enumerate() {
        for i in 0..blocks {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let p = format!("layer{}.{i}", stage + 1);
            let h = b.conv(&format!("{p}.conv1"), &format!("{p}.bn1"), x, planes, 3, stride, true);
            let h = b.conv(&format!("{p}.conv2"), &format!("{p}.bn2"), h, planes, 3, 1, false);
            let short = if stride != 1 || planes_in != planes {
                let pad = planes / 4;
                let channels = (0..planes_in).map(|c| Some(c + pad)).collect();
                b.push(Node::ChannelPlace { input: x, stride, out: planes, channels })
            } else {
                x
            };
            x = b.push(Node::Add { a: h, b: short, relu: true });
            planes_in = planes;
        }
    }
    let x = b.push(Node::GlobalAvgPool { input: x });
    b.push(Node::Dense { name: "linear".into(), input: x, out: classes, relu: false });
    b.finish(&format!("resnet{depth}"), classes, &IMAGENET_MEAN, &IMAGENET_STD)
}

/// ResNet-8 of MLPerf Tiny: 16/32/64 channels, 1×1 stride-2 projection shortcuts, 8×8 pool.
pub fn resnet8(classes: usize) -> Arch {
    let mut b = Builder { nodes: vec![] };
    let mut x = b.conv("conv1", "bn1", Src::Input, 16, 3, 1, true);
    let mut planes_in = 16;
    for (stage, planes) in [16usize, 32, 64].into_iter().enumerate() {
        let stride = if stage > 0 { 2 } else { 1 };
        let p = format!("layer{}.0", stage + 1);
        let h = b.conv(&format!("{p}.conv1"), &format!("{p}.bn1"), x, planes, 3, stride, true);
        let h = b.conv(&format!("{p}.conv2"), &format!("{p}.bn2"), h, planes, 3, 1, false);
        let short = if stride != 1 || planes_in != planes {
            b.conv(&format!("{p}.shortcut.0"), &format!("{p}.shortcut.1"), x, planes, 1, stride, false)
        } else {
            x
        };
        x = b.push(Node::Add { a: h, b: short, relu: true });
        planes_in = planes;
    }
    let x = b.push(Node::AvgPool { input: x, kernel: 8, stride: 8 });
    b.push(Node::Dense { name: "linear".into(), input: x, out: classes, relu: false });
    b.finish("resnet8", classes, &[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616])
}

/// ResNet-18 (BasicBlocks) or ResNet-50 (Bottlenecks, expansion 4) for CIFAR: 3×3 stem without
/// max pool, 1×1 projection shortcuts where the shape changes (the common CIFAR layout, names as
/// `layer1.0.conv1`, `layer1.0.shortcut.0`/`.1`).
pub fn resnet_projection(bottleneck: bool, blocks: [usize; 4], classes: usize) -> Arch {
    let expansion = if bottleneck { 4 } else { 1 };
    let mut b = Builder { nodes: vec![] };
    let mut x = b.conv("conv1", "bn1", Src::Input, 64, 3, 1, true);
    let mut planes_in = 64;
    for (stage, (&n, planes)) in blocks.iter().zip([64usize, 128, 256, 512]).enumerate() {
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let p = format!("layer{}.{i}", stage + 1);
            let out = planes * expansion;
            let h = if bottleneck {
                let h = b.conv(&format!("{p}.conv1"), &format!("{p}.bn1"), x, planes, 1, 1, true);
                let h = b.conv(&format!("{p}.conv2"), &format!("{p}.bn2"), h, planes, 3, stride, true);
                b.conv(&format!("{p}.conv3"), &format!("{p}.bn3"), h, out, 1, 1, false)
            } else {
                let h = b.conv(&format!("{p}.conv1"), &format!("{p}.bn1"), x, planes, 3, stride, true);
                b.conv(&format!("{p}.conv2"), &format!("{p}.bn2"), h, out, 3, 1, false)
            };
            let short = if stride != 1 || planes_in != out {
                b.conv(&format!("{p}.shortcut.0"), &format!("{p}.shortcut.1"), x, out, 1, stride, false)
            } else {
                x
            };
            x = b.push(Node::Add { a: h, b: short, relu: true });
            planes_in = out;
        }
    }
    let x = b.push(Node::GlobalAvgPool { input: x });
    b.push(Node::Dense { name: "linear".into(), input: x, out: classes, relu: false });
    let name = if bottleneck { "resnet50" } else { "resnet18" };
    b.finish(name, classes, &[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616])
}

/// VGG-16-BN for CIFAR: 13 conv+BN+ReLU, 5 max pools, one linear classifier.
pub fn vgg16(classes: usize) -> Arch {
    const CFG: [usize; 18] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];
    let mut b = Builder { nodes: vec![] };
    let mut x = Src::Input;
    let mut k = 0;
    for &c in &CFG {
        if c == 0 {
            x = b.push(Node::MaxPool { input: x, kernel: 2, stride: 2, padding: 0 });
        } else {
            x = b.conv(&format!("features.{k}"), &format!("features.{}", k + 1), x, c, 3, 1, true);
            k += 3;
        }
    }
    b.push(Node::Dense { name: "classifier".into(), input: x, out: classes, relu: false });
    b.finish("vgg16", classes, &[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_shapes_and_published_sizes() {
        // Parameter counts published for the CIFAR ResNets (conv + BN + linear): 0.27 M, 0.85 M.
        let (_, p20) = resnet_cifar(20, 10).cost().unwrap();
        assert!((p20 as f64 / 1e6 - 0.27).abs() < 0.005, "{p20}");
        let (m20, _) = resnet_cifar(20, 10).cost().unwrap();
        // 40.55 M MACs is the commonly quoted figure for ResNet-20 on 32×32.
        assert!((m20 as f64 / 1e6 - 40.6).abs() < 0.5, "{m20}");
        let (_, p56) = resnet_cifar(56, 10).cost().unwrap();
        assert!((p56 as f64 / 1e6 - 0.85).abs() < 0.01, "{p56}");
        // MLPerf Tiny ResNet-8: 78 k parameters, 12.5 M MACs.
        let (m8, p8) = resnet8(10).cost().unwrap();
        assert!((p8 as f64 / 1e3 - 78.0).abs() < 2.0, "{p8}");
        assert!((m8 as f64 / 1e6 - 12.5).abs() < 0.3, "{m8}");
        // VGG-16 CIFAR: 313.5 M MACs, 14.7 M parameters.
        let (mv, pv) = vgg16(10).cost().unwrap();
        assert!((mv as f64 / 1e6 - 313.5).abs() < 1.0, "{mv}");
        assert!((pv as f64 / 1e6 - 14.7).abs() < 0.05, "{pv}");
        // CIFAR ResNet-18: 11.17 M parameters, 0.56 G MACs; ResNet-50: 23.5 M, 1.30 G.
        let (m18, p18) = by_name("resnet18", 10).unwrap().cost().unwrap();
        assert!((p18 as f64 / 1e6 - 11.17).abs() < 0.05 && (m18 as f64 / 1e9 - 0.556).abs() < 0.01, "{p18} {m18}");
        let (m50, p50) = by_name("resnet50", 10).unwrap().cost().unwrap();
        assert!((p50 as f64 / 1e6 - 23.5).abs() < 0.1 && (m50 as f64 / 1e9 - 1.30).abs() < 0.02, "{p50} {m50}");
        for name in NAMES {
            by_name(name, 10).unwrap().shapes().unwrap();
        }
        // torchvision's ImageNet ResNet-18 at 224×224, 1000 classes: 1.82 G MACs, 11.69 M
        // parameters; ResNet-50: 4.09 G, 25.56 M (its model card's figures).
        let (m, p) = for_input("resnet18", 1000, 224).unwrap().cost().unwrap();
        assert!((m as f64 / 1e9 - 1.82).abs() < 0.01 && (p as f64 / 1e6 - 11.69).abs() < 0.01, "{m} {p}");
        let (m, p) = for_input("resnet50", 1000, 224).unwrap().cost().unwrap();
        assert!((m as f64 / 1e9 - 4.09).abs() < 0.02 && (p as f64 / 1e6 - 25.56).abs() < 0.01, "{m} {p}");
        // Checkpoints written before the ops took the format's names (`Linear`, `Place`) load.
        let r20 = resnet_cifar(20, 10);
        let old = serde_json::to_string(&r20)
            .unwrap()
            .replace("\"Dense\"", "\"Linear\"")
            .replace("\"ChannelPlace\"", "\"Place\"");
        assert!(old.contains("\"Linear\"") && old.contains("\"Place\""));
        assert_eq!(serde_json::from_str::<Arch>(&old).unwrap(), r20);
        // At 64×64 the stem leaves 16×16 for stage 1; every zoo model builds at 64 and 96.
        let r18 = for_input("resnet18", 102, 64).unwrap();
        assert_eq!(r18.shapes().unwrap()[1], Shape { c: 64, h: 16, w: 16 });
        for name in NAMES {
            for size in [64, 96] {
                assert!(for_input(name, 102, size).is_some(), "{name} at {size}");
            }
        }
    }
}
