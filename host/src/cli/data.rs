//! `pare data fetch`.

use crate::data::fetch::{fetch_cifar10, CIFAR10_MD5, CIFAR10_URL};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// Download a dataset, verify its checksum and extract it.
    Fetch {
        /// Dataset name: cifar10.
        name: String,
        /// Destination folder.
        #[arg(long, default_value = "data")]
        to: PathBuf,
        /// Mirror URL of the official archive (the md5 is still checked).
        #[arg(long, default_value = CIFAR10_URL)]
        url: String,
    },
}

pub fn run(c: DataCommand) -> anyhow::Result<()> {
    match c {
        DataCommand::Fetch { name, to, url } => {
            if name != "cifar10" {
                anyhow::bail!("unknown dataset '{name}' (available: cifar10)");
            }
            let dir = fetch_cifar10(&url, CIFAR10_MD5, &to)?;
            println!("CIFAR-10 ready in {} (use --data {})", dir.display(), dir.display());
            Ok(())
        }
    }
}
