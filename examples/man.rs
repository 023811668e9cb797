//! Writes preflight's man page (roff) to stdout, generated from the clap definition the
//! binary parses with: `scripts/man.sh` keeps `doc/preflight.1` in step with it.
fn main() -> std::io::Result<()> {
    let cmd = preflight::cli::command();
    clap_mangen::Man::new(cmd).render(&mut std::io::stdout())
}
