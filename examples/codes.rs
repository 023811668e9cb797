//! Writes README's table of finding codes (markdown) to stdout, generated from every
//! check's declared codes: `scripts/man.sh` keeps README in step with it.
fn main() {
    print!("{}", preflight::checks::codes_markdown());
}
