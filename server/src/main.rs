//! The `diffcopy` program. The server and client arrive with their issues.

fn main() {
    eprintln!("diffcopy {}: the server and client are not built yet", env!("CARGO_PKG_VERSION"));
    std::process::exit(2);
}
