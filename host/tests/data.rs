//! Data loading: CIFAR-10 folders and archives, strict validation with file and offset in the
//! error, the synthetic set, and `pare data fetch` against a local HTTP server; bounded reads
//! and decompression, images checked before decoding, no empty split and no image left out.

mod common;

use pare::testing::shared;

use pare::data::{fetch, load, load_cifar, superset_split, DataError};
use std::io::Write;

#[test]
fn folder_splits_and_named_bins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data_batch_1.bin"), common::cifar_records(3)).unwrap();
    std::fs::write(dir.path().join("data_batch_2.bin"), common::cifar_records(2)).unwrap();
    for i in 3..=5 {
        std::fs::write(dir.path().join(format!("data_batch_{i}.bin")), common::cifar_records(1)).unwrap();
    }
    std::fs::write(dir.path().join("test_lossless.bin"), common::cifar_records(4)).unwrap();
    let train = load_cifar(dir.path(), "train").unwrap();
    assert_eq!(train.len(), 8);
    assert_eq!(train.labels, vec![0, 1, 2, 0, 1, 0, 0, 0]);
    // Record 1 of batch 1: pixel j is (1 + j) % 256; channel-planar, R plane first.
    assert_eq!(train.image(1)[0], 1);
    assert_eq!(train.image(1)[1024], ((1 + 1024) % 256) as u8);
    // HWC: pixel 0 is (R, G, B) = planes' first bytes.
    assert_eq!(&train.image_hwc(1)[..3], &[1, ((1 + 1024) % 256) as u8, ((1 + 2048) % 256) as u8]);
    assert_eq!(load_cifar(dir.path(), "test_lossless").unwrap().len(), 4);
    match load_cifar(dir.path(), "test") {
        Err(DataError::NoFiles { split, .. }) => assert_eq!(split, "test"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_size_and_bad_label_name_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = common::cifar_records(2);
    bytes.pop();
    std::fs::write(dir.path().join("test_batch.bin"), &bytes).unwrap();
    match load_cifar(dir.path(), "test") {
        Err(DataError::BadSize { path, len }) => {
            assert!(path.ends_with("test_batch.bin"));
            assert_eq!(len, 2 * 3073 - 1);
        }
        other => panic!("{other:?}"),
    }
    let mut bytes = common::cifar_records(3);
    bytes[2 * 3073] = 10;
    std::fs::write(dir.path().join("test_batch.bin"), &bytes).unwrap();
    match load_cifar(dir.path(), "test") {
        Err(DataError::BadLabel { offset, label, .. }) => assert_eq!((offset, label), (2 * 3073, 10)),
        other => panic!("{other:?}"),
    }
    let err = load_cifar(&dir.path().join("nope"), "test").unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
}

/// A folder or archive missing one file of a split is refused, naming the file,
/// instead of training on the rest without a word (it trained on 40,000 of 50,000 images).
#[test]
fn an_incomplete_split_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for i in [1, 2, 4, 5] {
        std::fs::write(dir.path().join(format!("data_batch_{i}.bin")), common::cifar_records(2)).unwrap();
    }
    match load_cifar(dir.path(), "train") {
        Err(DataError::Incomplete { missing, split, .. }) => {
            assert_eq!((missing, split.as_str()), (vec!["data_batch_3.bin".to_string()], "train"))
        }
        other => panic!("{other:?}"),
    }
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    std::fs::write(&archive, tar_gz(&[("data_batch_1.bin", common::cifar_records(2))])).unwrap();
    let err = load_cifar(&archive, "train").unwrap_err().to_string();
    assert!(err.contains("incomplete") && err.contains("data_batch_2.bin, data_batch_3.bin"), "{err}");
}

fn tar_gz(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn reads_the_official_archive_layout_directly() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    std::fs::write(
        &archive,
        tar_gz(&[("test_batch.bin", common::cifar_records(5)), ("batches.meta.txt", b"airplane\n".to_vec())]),
    )
    .unwrap();
    let ds = load_cifar(&archive, "test").unwrap();
    assert_eq!(ds.len(), 5);
    assert_eq!(ds.labels, vec![0, 1, 2, 3, 4]);
}

#[test]
fn synthetic_is_deterministic_and_balanced() {
    let a = load("synthetic", "test").unwrap();
    let b = load("synthetic", "test").unwrap();
    assert_eq!(a.images, b.images);
    assert_eq!(a.len(), 1000);
    for k in 0..10u8 {
        assert_eq!(a.labels.iter().filter(|&&l| l == k).count(), 100);
    }
    assert!(matches!(load("synthetic", "valid"), Err(DataError::UnknownSplit(_))));
}

/// Serves `body` once per connection on 127.0.0.1, for a bounded number of requests.
fn serve(body: Vec<u8>, requests: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}/cifar-10-binary.tar.gz")
}

#[test]
fn fetch_verifies_md5_and_extracts() {
    let archive = tar_gz(&[("test_batch.bin", common::cifar_records(2))]);
    let md5 = format!("{:x}", md5::compute(&archive));
    let url = serve(archive, 1);
    let dir = tempfile::tempdir().unwrap();
    let out = fetch::fetch_cifar10(&url, &md5, dir.path()).unwrap();
    assert_eq!(load_cifar(&out, "test").unwrap().len(), 2);
}

#[test]
fn fetch_refuses_a_corrupted_archive() {
    let archive = tar_gz(&[("test_batch.bin", common::cifar_records(2))]);
    let md5 = format!("{:x}", md5::compute(&archive));
    let mut bad = archive.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    let url = serve(bad, 1);
    let dir = tempfile::tempdir().unwrap();
    match fetch::fetch_cifar10(&url, &md5, dir.path()) {
        Err(fetch::FetchError::Checksum { expected, .. }) => assert_eq!(expected, md5),
        other => panic!("{other:?}"),
    }
    assert!(!dir.path().join("cifar-10-binary.tar.gz").exists(), "a bad download must not be kept");
}

#[test]
fn shared_cifar_loads_with_the_documented_counts() {
    let shared = shared("data/cifar10");
    let d = shared.join("data/cifar10");
    assert_eq!(load_cifar(&d, "test_lossless").unwrap().len(), 1668);
    assert_eq!(load_cifar(&d, "test").unwrap().len(), 10_000);
}

#[test]
fn index_file_splits_select_from_their_base_split() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data_batch_1.bin"), common::cifar_records(6)).unwrap();
    for i in 2..=5 {
        std::fs::write(dir.path().join(format!("data_batch_{i}.bin")), common::cifar_records(1)).unwrap();
    }
    std::fs::write(dir.path().join("train_exact_indices.txt"), "4\n1\n\n5\n").unwrap();
    let ds = load_cifar(dir.path(), "train_exact").unwrap();
    assert_eq!(ds.labels, vec![4, 1, 5]);
    assert_eq!(ds.image(0)[0], 4, "record 4's first pixel is 4");
    std::fs::write(dir.path().join("train_bad_indices.txt"), "1\n99\n").unwrap();
    match load_cifar(dir.path(), "train_bad") {
        Err(DataError::BadIndex { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
    // The split each was drawn from (what `pare pipeline` distils on by default); a split
    // with its own .bin, or none at all, has none.
    let d = dir.path().to_str().unwrap();
    assert_eq!(superset_split(d, "train_exact").as_deref(), Some("train"));
    std::fs::write(dir.path().join("extra.bin"), common::cifar_records(1)).unwrap();
    std::fs::write(dir.path().join("extra_indices.txt"), "0\n").unwrap();
    assert_eq!(superset_split(d, "extra"), None);
    assert_eq!(superset_split(d, "train"), None);
    assert_eq!(superset_split("synthetic", "train"), None);
    let shared = shared("data/cifar10");
    assert_eq!(load_cifar(&shared.join("data/cifar10"), "train_lossless").unwrap().len(), 7728);
    assert_eq!(
        superset_split(shared.join("data/cifar10").to_str().unwrap(), "train_lossless").as_deref(),
        Some("train")
    );
}

/// Writes an `w`×`h` PNG filled with one colour.
fn png(path: &std::path::Path, w: u32, h: u32, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb)).save(path).unwrap();
}

#[test]
fn image_folder_pooled_and_split_layouts() {
    // Pooled: root/<class>/*.png, five "cat" images, two "dog": classes sorted by name.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pool");
    for i in 0..5 {
        png(&root.join("cat").join(format!("{i}.png")), 8, 8, [10 * i as u8, 1, 2]);
    }
    for i in 0..2 {
        png(&root.join("dog").join(format!("{i}.png")), 8, 8, [200, 100 + i as u8, 50]);
    }
    std::fs::write(root.join("dog").join("notes.txt"), "not an image").unwrap();
    let all = pare::data::load_sized(root.to_str().unwrap(), "all", Some(8)).unwrap();
    assert_eq!((all.len(), all.classes, all.shape), (7, 2, [3, 8, 8]));
    assert_eq!(all.class_names, vec!["cat".to_string(), "dog".to_string()]);
    assert_eq!(all.labels, vec![0, 0, 0, 0, 0, 1, 1]);
    // Planar pixels of cat/3.png: R 30 everywhere, then G 1, then B 2 (PNG is lossless and
    // 8×8 needs no resize).
    let img = all.image(3);
    assert!(
        img[..64].iter().all(|&v| v == 30)
            && img[64..128].iter().all(|&v| v == 1)
            && img[128..].iter().all(|&v| v == 2)
    );
    // Every fifth image of each class is the test split: cat/4 only (dog has two).
    let test = pare::data::load_sized(root.to_str().unwrap(), "test", Some(8)).unwrap();
    assert_eq!((test.len(), test.labels.clone(), test.image(0)[0]), (1, vec![0], 40));
    assert_eq!(pare::data::load_sized(root.to_str().unwrap(), "train", Some(8)).unwrap().len(), 6);
    // Resized: a 16×8 image at 4×4 keeps its colour (a flat image resamples to itself).
    png(&root.join("cat").join("wide.png"), 16, 8, [7, 8, 9]);
    let small = pare::data::load_sized(root.to_str().unwrap(), "all", Some(4)).unwrap();
    let wide = small.image(5);
    assert_eq!((wide.len(), wide[0], wide[16], wide[47]), (48, 7, 8, 9));
    // Split folders: root/<split>/<class>; a class only in train still numbers the same.
    let root = dir.path().join("split");
    png(&root.join("train").join("a").join("0.png"), 8, 8, [1, 1, 1]);
    png(&root.join("train").join("b").join("0.png"), 8, 8, [2, 2, 2]);
    png(&root.join("test").join("b").join("0.png"), 8, 8, [3, 3, 3]);
    let test = pare::data::load_sized(root.to_str().unwrap(), "test", Some(8)).unwrap();
    assert_eq!((test.classes, test.labels.clone()), (2, vec![1]));
    // Bad input: an unknown pooled split, a corrupt image, both named.
    let e = pare::data::load_sized(dir.path().join("pool").to_str().unwrap(), "holdout", Some(8)).unwrap_err();
    assert!(e.to_string().contains("holdout"), "{e}");
    std::fs::write(dir.path().join("pool").join("dog").join("2.png"), b"not a png").unwrap();
    let e = pare::data::load_sized(dir.path().join("pool").to_str().unwrap(), "all", Some(8)).unwrap_err();
    assert!(e.to_string().contains("2.png"), "{e}");
}

#[test]
fn flowers102_official_split_and_labels() {
    let shared = shared("data/flowers102-64");
    let root = shared.join("data/flowers102-64");
    // Counts of the official split (its README): 1,020 / 1,020 / 6,149.
    let ids = |s| pare::data::flowers::split_ids(&root, s).unwrap();
    let (train, val, test) = (ids("train"), ids("val"), ids("test"));
    assert_eq!((train.len(), val.len(), test.len()), (1020, 1020, 6149));
    // Values read independently (a Python reader of the .mat files, zlib + struct): trnid
    // starts 6765, 6755, 6768 and ends 8036, 8041; valid starts 6773; tstid starts 6734 and
    // ends 8047; the first three training images are class 1 (label 0).
    assert_eq!(&train[..3], &[(6765, 0), (6755, 0), (6768, 0)]);
    assert_eq!((train[1018].0, train[1019].0, val[0].0, test[0].0, test[6148].0), (8036, 8041, 6773, 6734, 8047));
    // Image 1 is class 77 (label 76) and image 1000 class 46: imagelabels.mat as read
    // independently (the dataset's first 5 labels are all 77).
    let label_of = |id: usize| train.iter().chain(&val).chain(&test).find(|(i, _)| *i == id).map(|(_, l)| *l);
    assert_eq!((label_of(1), label_of(1000)), (Some(76), Some(45)));
    // Ten training images per class, every class in each split, ids disjoint.
    let mut per = [0usize; 102];
    train.iter().for_each(|(_, l)| per[*l as usize] += 1);
    assert!(per.iter().all(|&n| n == 10));
    let mut all: Vec<usize> = train.iter().chain(&val).chain(&test).map(|(i, _)| *i).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 8189);
    // Decoded at the thumbnails' 64×64: image 6765 (the first training image). PIL's mean
    // over its pixels is (128.58, 115.26, 126.39); JPEG decoders may differ by a unit or two.
    let ds = pare::data::load_sized(root.to_str().unwrap(), "train", Some(64)).unwrap();
    assert_eq!((ds.len(), ds.classes, ds.shape), (1020, 102, [3, 64, 64]));
    for (c, want) in [128.58, 115.26, 126.39].iter().enumerate() {
        let plane = &ds.image(0)[c * 4096..(c + 1) * 4096];
        let mean = plane.iter().map(|&v| f64::from(v)).sum::<f64>() / 4096.0;
        assert!((mean - want).abs() < 1.0, "channel {c}: {mean} vs {want}");
    }
    assert!(pare::data::load_sized(root.to_str().unwrap(), "holdout", Some(64)).is_err());
}

#[test]
fn spread_samples_cover_a_class_sorted_split() {
    // Ten images, labels sorted by class (0,0,1,1,…,4,4): the first five are classes 0–2, five
    // spread ones (indices 0, 2, 4, 6, 8) one of each class.
    let ds = pare::data::Dataset {
        images: (0..10u8).flat_map(|i| [i; 3]).collect(),
        labels: (0..10u8).map(|i| i / 2).collect(),
        shape: [3, 1, 1],
        classes: 5,
        source: "sorted".into(),
        class_names: vec![],
    };
    assert_eq!(ds.clone().take(5).labels, vec![0, 0, 1, 1, 2]);
    let s = ds.clone().spread(5);
    assert_eq!(s.labels, vec![0, 1, 2, 3, 4]);
    assert_eq!(s.images, vec![0, 0, 0, 2, 2, 2, 4, 4, 4, 6, 6, 6, 8, 8, 8]);
    assert_eq!(ds.clone().spread(20).len(), 10);
}

/// A MATLAB level-5 file written from the format specification: a 128-byte header, then each
/// variable as a 1×n uint16 matrix, `compress`ed ones inside an miCOMPRESSED (zlib) element.
fn mat_file(vars: &[(&str, &[u16])], compress: bool) -> Vec<u8> {
    fn el(ty: u32, data: &[u8]) -> Vec<u8> {
        let mut v = ty.to_le_bytes().to_vec();
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(data);
        v.resize(v.len().next_multiple_of(8), 0);
        v
    }
    let mut f = b"MATLAB 5.0 MAT-file, written by a test".to_vec();
    f.resize(124, b' ');
    f.extend([0x00, 0x01, b'I', b'M']);
    for (name, values) in vars {
        // Array flags (class 11: uint16), dimensions 1×n, name, then miUINT16 (type 4) data.
        let mut m = el(6, &[11, 0, 0, 0, 0, 0, 0, 0]);
        m.extend(el(5, &[1i32.to_le_bytes(), (values.len() as i32).to_le_bytes()].concat()));
        m.extend(el(1, name.as_bytes()));
        m.extend(el(4, &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()));
        let matrix = el(14, &m);
        if compress {
            f.extend(zlib_element(&matrix));
        } else {
            f.extend(matrix);
        }
    }
    f
}

/// An miCOMPRESSED element holding `inner` deflated.
fn zlib_element(inner: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(inner).unwrap();
    let packed = z.finish().unwrap();
    let mut v = 15u32.to_le_bytes().to_vec();
    v.extend((packed.len() as u32).to_le_bytes());
    v.extend(packed);
    v
}

/// A Flowers-102 layout of two 8×8 JPEGs: image 1 is class 1, image 2 class 2; train is
/// image 1, val image 2, test `test` (ids).
fn flowers(root: &std::path::Path, test: &[u16]) {
    std::fs::create_dir_all(root.join("jpg")).unwrap();
    for id in [1, 2] {
        image::RgbImage::from_pixel(8, 8, image::Rgb([40 * id, 80, 120]))
            .save(root.join("jpg").join(format!("image_{id:05}.jpg")))
            .unwrap();
    }
    std::fs::write(root.join("imagelabels.mat"), mat_file(&[("labels", &[1, 2])], true)).unwrap();
    std::fs::write(root.join("setid.mat"), mat_file(&[("trnid", &[1]), ("valid", &[2]), ("tstid", test)], false))
        .unwrap();
}

#[test]
fn an_empty_split_is_an_error_naming_it() {
    // Flowers-102 whose test ids list is empty, and a CIFAR index list with no lines: loading
    // them gave 0 images, and `pare eval` reported "top-1 0.00 %" with exit 0.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flowers");
    flowers(&root, &[]);
    let data = root.to_str().unwrap();
    let train = pare::data::load_sized(data, "train", Some(8)).unwrap();
    assert_eq!((train.len(), train.labels.clone()), (1, vec![0]), "the layout itself loads");
    match pare::data::load_sized(data, "test", Some(8)) {
        Err(e @ DataError::Empty { .. }) => assert!(e.to_string().contains("split 'test'"), "{e}"),
        other => panic!("{other:?}"),
    }
    let cifar = dir.path().join("cifar");
    std::fs::create_dir(&cifar).unwrap();
    std::fs::write(cifar.join("test_batch.bin"), common::cifar_records(3)).unwrap();
    std::fs::write(cifar.join("test_none_indices.txt"), "\n\n").unwrap();
    match pare::data::load(cifar.to_str().unwrap(), "test_none") {
        Err(e @ DataError::Empty { .. }) => assert!(e.to_string().contains("split 'test_none'"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_mat_file_bomb_is_refused_before_it_inflates() {
    // setid.mat whose compressed element declares a 4 GB matrix and inflates 20 MiB of zeros
    // from 20 kB (the real one of this shape inflated 6 MB into 4.8 GB).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flowers");
    flowers(&root, &[2]);
    assert_eq!(pare::data::load_sized(root.to_str().unwrap(), "test", Some(8)).unwrap().labels, vec![1]);
    let mut inner = 14u32.to_le_bytes().to_vec();
    inner.extend(0xffff_fff0u32.to_le_bytes());
    inner.resize(8 + (20 << 20), 0);
    let mut bomb = mat_file(&[], false);
    bomb.extend(zlib_element(&inner));
    assert!(bomb.len() < 64 << 10);
    std::fs::write(root.join("setid.mat"), &bomb).unwrap();
    match pare::data::load_sized(root.to_str().unwrap(), "test", Some(8)) {
        Err(DataError::Mat { path, cause: pare::data::mat5::MatError::TooLarge { size, .. } }) => {
            assert!(path.ends_with("setid.mat"), "{path:?}");
            assert_eq!(size, 0xffff_fff0 + 8);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_archive_entry_larger_than_the_cap_is_refused_unread() {
    // A 1 kB .tar.gz whose test_batch.bin declares 2 GiB: refused from its header, naming the
    // archive, the entry and the size, before anything is allocated for it.
    let mut h = tar::Header::new_gnu();
    h.set_path("cifar-10-batches-bin/test_batch.bin").unwrap();
    h.set_size(2 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    let mut raw = h.as_bytes().to_vec();
    raw.extend(common::cifar_records(1));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    std::fs::write(&archive, gz.finish().unwrap()).unwrap();
    match load_cifar(&archive, "test") {
        Err(e @ DataError::Inflated { .. }) => {
            let DataError::Inflated { ref path, ref what, size, limit } = e else { unreachable!() };
            assert_eq!((path, what.as_str(), size, limit), (&archive, "test_batch.bin", 2 << 30, 1 << 30));
            assert!(e.to_string().contains("cifar-10-binary.tar.gz"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn files_read_whole_must_be_regular() {
    // A class-names file that is /dev/zero: it was read until memory ran out.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test_batch.bin"), common::cifar_records(2)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("batches.meta.txt")).unwrap();
    match load_cifar(dir.path(), "test") {
        Err(DataError::Input(pare::input::InputError::NotRegular { path, .. })) => {
            assert!(path.ends_with("batches.meta.txt"), "{path:?}")
        }
        other => panic!("{other:?}"),
    }
}

/// A 128×128 JPEG of noise: tens of kB, nearly all of it scan data, so a cut to a third falls
/// inside the scan.
fn jpeg(path: &std::path::Path) -> Vec<u8> {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let noise =
        |x: u32, y: u32, c: u32| ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ c.wrapping_mul(31)) >> 3) as u8;
    image::RgbImage::from_fn(128, 128, |x, y| image::Rgb([noise(x, y, 0), noise(x, y, 1), noise(x, y, 2)]))
        .save(path)
        .unwrap();
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > 6000, "{} bytes", bytes.len());
    bytes
}

#[test]
fn truncated_images_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pool");
    jpeg(&root.join("cat").join("0.jpg"));
    let whole = jpeg(&root.join("dog").join("0.jpg"));
    png(&root.join("dog").join("1.png"), 8, 8, [1, 2, 3]);
    let data = root.to_str().unwrap();
    assert_eq!(pare::data::load_sized(data, "all", Some(8)).unwrap().len(), 3, "whole files load");
    // The JPEG cut to a third of its length: the decoder fills the rest with gray, silently.
    std::fs::write(root.join("dog").join("0.jpg"), &whole[..whole.len() / 3]).unwrap();
    match pare::data::load_sized(data, "all", Some(8)) {
        Err(e @ DataError::Truncated { .. }) => {
            assert!(e.to_string().contains("dog/0.jpg") && e.to_string().contains("JPEG"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // A PNG without its closing IEND chunk (the last 12 bytes).
    std::fs::write(root.join("dog").join("0.jpg"), &whole).unwrap();
    let p = std::fs::read(root.join("dog").join("1.png")).unwrap();
    std::fs::write(root.join("dog").join("1.png"), &p[..p.len() - 12]).unwrap();
    match pare::data::load_sized(data, "all", Some(8)) {
        Err(e @ DataError::Truncated { .. }) => assert!(e.to_string().contains("dog/1.png"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn image_dimensions_are_checked_before_decoding() {
    // A 16,777,216 × 1 PNG (a few kB to a few hundred): resizing its shorter side to 64 made a 1,073,741,824 × 64
    // image (8.6 GB). Refused from the header, naming the file and the dimensions.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pool");
    let wide = root.join("line").join("wide.png");
    std::fs::create_dir_all(wide.parent().unwrap()).unwrap();
    image::GrayImage::new(1 << 24, 1).save(&wide).unwrap();
    assert!(std::fs::metadata(&wide).unwrap().len() < 1 << 20, "a small file");
    match pare::data::load_sized(root.to_str().unwrap(), "all", Some(64)) {
        Err(e @ DataError::ImageSize { .. }) => {
            let DataError::ImageSize { ref path, width, height, pixels, resized, .. } = e else { unreachable!() };
            assert_eq!((path, width, height, pixels, resized), (&wide, 1 << 24, 1, (1 << 30) * 64, true));
            assert!(e.to_string().contains("wide.png") && e.to_string().contains("16777216×1"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn class_folders_with_non_utf8_names_stay_distinct() {
    // Three class folders, two named with bytes that are not UTF-8 (a lossy conversion makes
    // both "a\u{fffd}"), five images each: three classes and fifteen images, each labelled by its
    // own folder (the red channel says which).
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pool");
    let names: [&[u8]; 3] = [b"a\xfe", b"a\xff", b"b"];
    for (k, n) in names.iter().enumerate() {
        for i in 0..5 {
            let class = root.join(std::ffi::OsStr::from_bytes(n));
            png(&class.join(format!("{i}.png")), 4, 4, [50 * k as u8, i as u8, 0]);
        }
    }
    let ds = pare::data::load_sized(root.to_str().unwrap(), "all", Some(4)).unwrap();
    assert_eq!((ds.len(), ds.classes), (15, 3));
    assert_eq!(ds.class_names, vec!["a\\xFE".to_string(), "a\\xFF".to_string(), "b".to_string()]);
    for i in 0..15 {
        assert_eq!((ds.labels[i], ds.image(i)[0]), ((i / 5) as u8, 50 * (i / 5) as u8), "image {i}");
    }
    // An image beside the class folders has no class: an error naming it, not left out.
    png(&root.join("stray.png"), 4, 4, [0, 0, 0]);
    let e = pare::data::load_sized(root.to_str().unwrap(), "all", Some(4)).unwrap_err().to_string();
    assert!(e.contains("stray.png"), "{e}");
}
