//! `sqlx::migrate!` embeds `schemas/migrations` at compile time; without this a new
//! migration file would not rebuild the crate, and a warm build would ship without it.
fn main() {
    println!("cargo:rerun-if-changed=../schemas/migrations");
}
