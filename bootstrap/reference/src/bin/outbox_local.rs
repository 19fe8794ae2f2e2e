//! `outbox-local`: the reference service locally (`serve`, `demo`), the
//! operator's tools (`replay`, `redrive`, `status`, `unpark`) and its
//! deployment template (`template`).

fn main() -> std::process::ExitCode {
    outbox_bootstrap::local::main(outbox_reference::service)
}
