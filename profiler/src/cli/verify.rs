//! `profgen verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {}
pub fn run(_args: VerifyArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
