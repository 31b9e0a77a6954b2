pub fn bench(_s: u32, _r: usize) -> anyhow::Result<()> {
    Ok(())
}
