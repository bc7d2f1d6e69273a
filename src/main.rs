//! The `mvlpt` command-line interface.
#[allow(unused_imports)]
use mvlpt_dylib as _;

fn main() {
    println!("mvlpt {}", mvlpt_framework::version());
}
