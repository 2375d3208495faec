fn main() -> std::process::ExitCode {
    deckhand::main()
}
