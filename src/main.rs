fn main() {
    // Started as the stand-in for a helmfile hook while preflight renders: run nothing.
    if preflight::install::render::is_hook_shim() {
        std::process::exit(0);
    }
    // `preflight list | head` and `preflight explain ID | head -3`: a closed stdout ends the
    // process quietly, as for any Unix tool, instead of panicking in `print!`.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    std::process::exit(preflight::cli::main());
}
