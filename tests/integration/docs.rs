//! `deckhand docs`: generated from the engine's metadata, so every registered function is listed.

use crate::support::Deck;

/// The function names in a `deckhand docs` listing (indented lines `  name(...)  summary`).
fn listed_names(listing: &str) -> Vec<String> {
    let mut names: Vec<String> = listing
        .lines()
        .filter_map(|line| line.strip_prefix("  "))
        .filter_map(|line| line.split_once('(').map(|(name, _)| name.to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The listing line of `name`.
fn line_of<'a>(listing: &'a str, name: &str) -> &'a str {
    let prefix = format!("  {name}(");
    listing.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{name} is not listed:\n{listing}"))
}

#[test]
fn docs_lists_every_registered_function_by_area() {
    let deck = Deck::new();
    let listing = deck.deckhand(&["docs"]).success().stdout;

    let registered = deckhand::docs::function_names();
    assert!(registered.len() >= 10, "the engine registers the primitives: {registered:?}");
    let primitives: Vec<String> = listed_names(&listing).into_iter().filter(|n| !n.contains("::")).collect();
    assert_eq!(primitives, registered, "docs and engine disagree:\n{listing}");

    for (name, summary) in [
        ("subnet", "Ensures a subnet exists: #{ name, az, cidr, public_ip }."),
        ("security_group", "Ensures a security group with exactly the given rules"),
        ("route_table", "Ensures a route table with exactly the given subnets and routes"),
        ("stack", "Names the stack"),
        ("listener_rule", "Ensures a rule on a listener: #{ priority, paths, hosts, forward }."),
    ] {
        assert!(line_of(&listing, name).contains(summary), "{name} lacks {summary:?}:\n{listing}");
    }
    assert!(line_of(&listing, "subnet").starts_with("  subnet(vpc: Map, spec: Map) -> Map "));
    assert!(!listing.lines().any(|l| l.starts_with("  len(")), "Rhai's standard library is not listed");

    // Areas head their functions, in registration order.
    let heading = |area: &str| listing.lines().position(|l| l == area).unwrap_or_else(|| panic!("no {area} heading"));
    let position = |name: &str| listing.lines().position(|l| l.starts_with(&format!("  {name}("))).unwrap();
    assert!(heading("core") < position("stack"));
    assert!(heading("networking") < position("subnet") && position("subnet") < heading("egress"));
    assert!(heading("egress") < position("route_table"));
}

#[test]
fn docs_name_shows_one_function_in_full_with_its_example() {
    let deck = Deck::new();
    deck.deckhand(&["docs", "subnet"])
        .success()
        .stdout_has("subnet(vpc: Map, spec: Map) -> Map\n")
        .stdout_has("Ensures a subnet exists")
        .stdout_has("AZ and CIDR cannot change in place")
        .stdout_has("`keep: true` marks it (tag deckhand:keep)")
        .stdout_has(
            "Example:\n\n    subnet(vpc, #{ name: \"myapp-a\", az: \"us-west-2a\", cidr: \"172.31.96.0/24\" })",
        );
}

#[test]
fn docs_of_an_unknown_name_suggests_close_ones() {
    let deck = Deck::new();
    deck.deckhand(&["docs", "subnett"])
        .failure()
        .stderr_has("error: no script function is called `subnett`; did you mean `subnet`?")
        .stderr_has("`deckhand docs` lists every function");
}

#[test]
fn docs_start_with_the_fargate_module_environments_first_with_what_egress_costs() {
    let deck = Deck::new();
    let listing = deck.deckhand(&["docs"]).success().stdout;
    let position =
        |start: &str| listing.lines().position(|l| l.starts_with(start)).unwrap_or_else(|| panic!("{start}"));
    assert_eq!(position("fargate (import \"fargate\" as fargate;)"), 0, "{listing}");
    assert!(position("  fargate::environment(options)") < position("  fargate::web_service(env, options)"));
    assert!(position("  fargate::web_service(env, options)") < position("  fargate::web_service(options)"));
    assert!(position("  fargate::web_service(options)") < position("core"));
    assert!(line_of(&listing, "fargate::environment").contains("An environment: the network, cluster and"));
    let module: Vec<&str> = listing.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(module.len(), 4, "the heading and the module's three public functions: {module:?}");

    deck.deckhand(&["docs", "fargate::environment"])
        .success()
        .stdout_has("fargate::environment(options) -> Map\n")
        .stdout_has("\"nat_per_zone\": one per zone")
        .stdout_has("$36.50/month with its public IPv4 address")
        .stdout_has("the plan notes what each\n  costs a month");
    // Both overloads of web_service, each with its own doc; a bare name suggests the module's.
    deck.deckhand(&["docs", "fargate::web_service"])
        .success()
        .stdout_has("fargate::web_service(env, options) -> Map\n")
        .stdout_has("Attaches a web service to an environment")
        .stdout_has("fargate::web_service(options) -> Map\n")
        .stdout_has("the way the ECS guide does");
    deck.deckhand(&["docs", "environment"]).failure().stderr_has("did you mean `fargate::environment`?");
}
