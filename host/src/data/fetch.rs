//! `pare data fetch cifar10`: download the official archive, verify its md5, extract (at most
//! [`crate::data::MAX_ARCHIVE_BYTES`] decompressed).

use std::io::Read;
use std::path::{Path, PathBuf};

/// The official archive.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error("{path}: md5 {actual} does not match the expected {expected}; the file was removed")]
    Checksum { path: PathBuf, expected: String, actual: String },
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: decompresses to more than {limit} bytes; not extracted further")]
    Inflated { path: PathBuf, limit: u64 },
}

/// Downloads `url` into `dir`, checks `md5`, extracts it there; returns the extracted folder.
pub fn fetch_cifar10(url: &str, md5_hex: &str, dir: &Path) -> Result<PathBuf, FetchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| FetchError::Io { path: path.clone(), cause: e }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let archive = dir.join("cifar-10-binary.tar.gz");
    let dl = |reason: String| FetchError::Download { url: url.into(), reason };
    let resp = ureq::get(url).call().map_err(|e| dl(e.to_string()))?;
    let total = resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let bar = crate::progress::bytes(total, "downloading CIFAR-10");
    let mut reader = resp.into_body().into_reader();
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    let mut ctx = md5::Context::new();
    {
        let mut out = std::io::BufWriter::new(tmp.as_file());
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf).map_err(|e| dl(e.to_string()))?;
            if n == 0 {
                break;
            }
            ctx.consume(&buf[..n]);
            std::io::Write::write_all(&mut out, &buf[..n]).map_err(io(&archive))?;
            bar.inc(n as u64);
        }
        std::io::Write::flush(&mut out).map_err(io(&archive))?;
    }
    bar.finish_and_clear();
    let actual = format!("{:x}", ctx.compute());
    if actual != md5_hex {
        return Err(FetchError::Checksum { path: archive, expected: md5_hex.into(), actual });
    }
    tmp.persist(&archive).map_err(|e| FetchError::Io { path: archive.clone(), cause: e.error })?;
    extract(&archive, dir, super::MAX_ARCHIVE_BYTES)?;
    Ok(dir.join("cifar-10-batches-bin"))
}

/// Unpacks the gzipped tar `archive` into `dir`, refusing to decompress more than `limit` bytes.
fn extract(archive: &Path, dir: &Path, limit: u64) -> Result<(), FetchError> {
    let file = std::fs::File::open(archive).map_err(|cause| FetchError::Io { path: archive.into(), cause })?;
    let (stream, cap) = crate::input::Capped::new(flate2::read::GzDecoder::new(file), limit);
    tar::Archive::new(stream).unpack(dir).map_err(|cause| {
        if cap.exceeded() {
            FetchError::Inflated { path: archive.into(), limit }
        } else {
            FetchError::Io { path: dir.into(), cause }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction_stops_at_the_decompression_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let mut h = tar::Header::new_gnu();
        h.set_size(4 << 20);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "cifar-10-batches-bin/data_batch_1.bin", &vec![0u8; 4 << 20][..]).unwrap();
        let archive = dir.path().join("a.tar.gz");
        std::fs::write(&archive, tar.into_inner().unwrap().finish().unwrap()).unwrap();
        match extract(&archive, dir.path(), 1 << 20) {
            Err(FetchError::Inflated { path, limit }) => assert_eq!((path, limit), (archive.clone(), 1 << 20)),
            other => panic!("{other:?}"),
        }
        extract(&archive, dir.path(), 8 << 20).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("cifar-10-batches-bin/data_batch_1.bin")).unwrap().len(), 4 << 20);
    }
}
