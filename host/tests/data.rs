//! Data loading: CIFAR-10 folders and archives, strict validation with file and offset in the
//! error, the synthetic set, and `pare data fetch` against a local HTTP server.

mod common;

use pare::testing::shared;

use pare::data::{fetch, load, load_cifar, DataError};
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

/// Issue 15, item 5: a folder or archive missing one file of a split is refused, naming the file,
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
    let Some(shared) = shared("data/cifar10") else { return };
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
    let Some(shared) = shared("data/cifar10") else { return };
    assert_eq!(load_cifar(&shared.join("data/cifar10"), "train_lossless").unwrap().len(), 7728);
}
