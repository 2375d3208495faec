//! HTTPS on your own domain: `hosted_zone`, `certificate` (ACM, validated through Route 53) and
//! `dns_record`, through the bundled script with `--var domain/zone`, checked through the SDK.

use aws_sdk_route53::types::ResourceRecordSet;

use crate::support::{Deck, Outcome};

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fargate-alb.rhai");

fn guide(deck: &Deck, extra: &[&str]) -> Outcome {
    let mut args = vec!["run", GUIDE];
    args.extend_from_slice(extra);
    deck.deckhand(&args)
}

/// Creates the public hosted zone `name` the way a user would, and returns its id.
fn create_zone(deck: &Deck, name: &str) -> String {
    let aws = deck.aws();
    let out = aws
        .block_on(aws.route53.create_hosted_zone().name(name).caller_reference(format!("test-{name}")).send())
        .expect("CreateHostedZone");
    out.hosted_zone().expect("a zone").id().trim_start_matches("/hostedzone/").to_string()
}

/// Creates or deletes (`action`) a record set (name, type, one value, TTL 60) the way a user would.
fn change_record(deck: &Deck, zone_id: &str, action: &str, (name, rtype, value): (&str, &str, &str)) {
    let aws = deck.aws();
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(rtype.into())
        .ttl(60)
        .resource_records(aws_sdk_route53::types::ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap();
    let change =
        aws_sdk_route53::types::Change::builder().action(action.into()).resource_record_set(set).build().unwrap();
    let batch = aws_sdk_route53::types::ChangeBatch::builder().changes(change).build().unwrap();
    aws.block_on(aws.route53.change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch).send()).unwrap();
}

fn records(deck: &Deck, zone_id: &str) -> Vec<ResourceRecordSet> {
    let aws = deck.aws();
    let out = aws
        .block_on(aws.route53.list_resource_record_sets().hosted_zone_id(zone_id).send())
        .expect("ListResourceRecordSets");
    out.resource_record_sets().to_vec()
}

fn record<'a>(sets: &'a [ResourceRecordSet], name: &str, rtype: &str) -> Option<&'a ResourceRecordSet> {
    sets.iter().find(|s| s.name().trim_end_matches('.') == name && s.r#type().as_str() == rtype)
}

/// The certificate ARNs ACM has for `domain`, with their status.
fn certificates(deck: &Deck, domain: &str) -> Vec<(String, String)> {
    let aws = deck.aws();
    let out = aws.block_on(aws.acm.list_certificates().send()).expect("ListCertificates");
    out.certificate_summary_list()
        .iter()
        .filter(|c| c.domain_name() == Some(domain))
        .map(|c| {
            let arn = c.certificate_arn().unwrap().to_string();
            let status = aws
                .block_on(aws.acm.describe_certificate().certificate_arn(&arn).send())
                .expect("DescribeCertificate")
                .certificate()
                .and_then(|c| c.status())
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            (arn, status)
        })
        .collect()
}

/// A listener as the tests look at it: port, certificate ARN, redirect target ("HTTPS:443").
type ListenerFacts = (i32, Option<String>, Option<String>);

/// The load balancer `myapp`'s DNS name and canonical zone, and its listeners.
fn alb(deck: &Deck) -> (String, String, Vec<ListenerFacts>) {
    let aws = deck.aws();
    let lb =
        aws.block_on(aws.elbv2.describe_load_balancers().names("myapp").send()).unwrap().load_balancers()[0].clone();
    let listeners =
        aws.block_on(aws.elbv2.describe_listeners().load_balancer_arn(lb.load_balancer_arn().unwrap()).send()).unwrap();
    let listeners = listeners
        .listeners()
        .iter()
        .map(|l| {
            let cert = l.certificates().first().and_then(|c| c.certificate_arn()).map(str::to_string);
            let redirect = l.default_actions()[0]
                .redirect_config()
                .map(|r| format!("{}:{}", r.protocol().unwrap_or_default(), r.port().unwrap_or_default()));
            (l.port().unwrap(), cert, redirect)
        })
        .collect();
    (lb.dns_name().unwrap().to_string(), lb.canonical_hosted_zone_id().unwrap().to_string(), listeners)
}

fn assert_serves(deck: &Deck, zone_id: &str, domain: &str) -> String {
    let certs = certificates(deck, domain);
    let issued: Vec<&(String, String)> = certs.iter().filter(|(_, s)| s == "ISSUED").collect();
    assert_eq!(issued.len(), 1, "one ISSUED certificate for {domain}: {certs:?}");
    let arn = issued[0].0.clone();
    let (dns_name, lb_zone, listeners) = alb(deck);
    let https = listeners.iter().find(|l| l.0 == 443).expect("an HTTPS listener");
    assert_eq!(https.1.as_deref(), Some(arn.as_str()), "the HTTPS listener uses the managed certificate");
    let http = listeners.iter().find(|l| l.0 == 80).expect("an HTTP listener");
    assert_eq!(http.2.as_deref(), Some("HTTPS:443"), "port 80 redirects to 443");

    let sets = records(deck, zone_id);
    for rtype in ["A", "AAAA"] {
        let set = record(&sets, domain, rtype).unwrap_or_else(|| panic!("an {rtype} record for {domain}: {sets:?}"));
        let alias = set.alias_target().expect("an alias record");
        assert_eq!(alias.dns_name().trim_end_matches('.'), dns_name.to_ascii_lowercase());
        assert_eq!(alias.hosted_zone_id(), lb_zone);
    }
    // The validation CNAME ACM asks for is in the zone.
    let aws = deck.aws();
    let described = aws.block_on(aws.acm.describe_certificate().certificate_arn(&arn).send()).unwrap();
    let option = &described.certificate().unwrap().domain_validation_options()[0];
    let wanted = option.resource_record().expect("a DNS validation record");
    let cname = record(&sets, wanted.name().trim_end_matches('.'), "CNAME").expect("the validation CNAME");
    assert_eq!(cname.resource_records()[0].value(), wanted.value());
    // The ownership marker beside the name.
    let marker = record(&sets, &format!("_deckhand.{domain}"), "TXT").expect("the ownership marker");
    let values: Vec<&str> = marker.resource_records().iter().map(|r| r.value()).collect();
    assert!(values.contains(&"\"deckhand:stack=myapp type=A\""), "{values:?}");
    arn
}

#[test]
fn a_domain_gets_a_validated_certificate_https_a_redirect_and_alias_records() {
    let deck = Deck::new();
    let zone_id = create_zone(&deck, "example.com");
    let vars = ["--var", "domain=app.example.com", "--var", "zone=example.com"];
    guide(&deck, &vars)
        .success()
        .stdout_has("+ certificate app.example.com")
        .stdout_has("+ listener myapp:443")
        .stdout_has("+ dns_record app.example.com A+AAAA")
        .stdout_has("https://app.example.com\n");
    let first = assert_serves(&deck, &zone_id, "app.example.com");

    // A re-run changes nothing and sends nothing mutating.
    let (again, requests) = deck.recorded(|| guide(&deck, &vars));
    again.success().stdout_has("0 created, 0 updated");
    requests.assert_read_only();

    // status shows the certificate with its expiry and the records.
    deck.deckhand(&["status", "--stack", "myapp"])
        .success()
        .stdout_has("certificate")
        .stdout_has("ISSUED")
        .stdout_has("expires ")
        .stdout_has("app.example.com A");

    // Another name converges: a new certificate, the listener switched to it, records for the name.
    let vars = ["--var", "domain=www.example.com", "--var", "zone=example.com"];
    guide(&deck, &vars).success().stdout_has("+ certificate www.example.com").stdout_has("~ listener myapp:443");
    let second = assert_serves(&deck, &zone_id, "www.example.com");
    assert_ne!(first, second);

    // destroy removes records, listeners and both certificates, and keeps the zone.
    deck.deckhand(&["destroy", "--stack", "myapp", "--yes"]).success();
    assert!(certificates(&deck, "app.example.com").is_empty() && certificates(&deck, "www.example.com").is_empty());
    let left: Vec<String> = records(&deck, &zone_id)
        .iter()
        .filter(|s| !matches!(s.r#type().as_str(), "NS" | "SOA"))
        .map(|s| format!("{} {}", s.name(), s.r#type().as_str()))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "every record the stack wrote is gone");
    let aws = deck.aws();
    aws.block_on(aws.route53.get_hosted_zone().id(&zone_id).send()).expect("the zone is kept");
}

#[test]
fn bad_domains_fail_with_line_and_column_before_anything_is_sent() {
    let deck = Deck::new();
    create_zone(&deck, "example.com");
    let cases: &[(&[&str], &str)] = &[
        (&["--var", "domain=app.example.org", "--var", "zone=example.com"], "inside the hosted zone example.com"),
        (
            &["--var", "domain=app.nowhere.net", "--var", "zone=nowhere.net"],
            "no public Route 53 hosted zone named nowhere.net",
        ),
        (&["--var", "domain=", "--var", "zone=example.com"], "invalid certificate.domain \"\""),
        (
            &["--var", "domain=bad..example.com", "--var", "zone=example.com"],
            "invalid certificate.domain \"bad..example.com\"",
        ),
        // Route 53 takes `_`, ACM refuses it only at RequestCertificate: the plan says so.
        (&["--var", "domain=my_app.example.com", "--var", "zone=example.com"], "a name without `_`"),
        (
            &[
                "--var",
                "domain=app.example.com",
                "--var",
                "zone=example.com",
                "--var",
                "certificate_arn=arn:aws:acm:us-west-2:123456789012:certificate/x",
            ],
            "--var domain and --var certificate_arn exclude each other",
        ),
    ];
    for (vars, message) in cases {
        let (outcome, requests) = deck.recorded(|| guide(&deck, vars));
        outcome.failure().stderr_has(message).stderr_has("fargate-alb.rhai:");
        assert_eq!(requests.mutating(), Vec::<String>::new(), "{vars:?} sent mutating requests");
    }
    // The missing zone's error names the zones the account has.
    guide(&deck, &["--var", "domain=app.nowhere.net", "--var", "zone=nowhere.net"])
        .failure()
        .stderr_has("its public zones: example.com");
}

#[test]
fn records_deckhand_did_not_create_are_never_overwritten() {
    let deck = Deck::new();
    let zone_id = create_zone(&deck, "example.com");
    // Someone's hand-made record at the name the script wants.
    change_record(&deck, &zone_id, "CREATE", ("api.example.com", "A", "192.0.2.9"));

    let script = r#"
stack("dns");
let zone = hosted_zone("example.com");
dns_record(zone, #{ name: "www.example.com", type: "CNAME", values: ["app.example.com"], ttl: 120 });
dns_record(zone, #{ name: "api.example.com", type: "A", values: ["192.0.2.1"] });
"#;
    let (outcome, requests) = deck.recorded(|| deck.run(script, &[]));
    outcome
        .failure()
        .stderr_has(
            "a DNS record named api.example.com A already exists (zone example.com) and is not part of stack dns",
        )
        .stderr_has("--> deploy.rhai:5:1");
    requests.assert_read_only();
    let sets = records(&deck, &zone_id);
    assert_eq!(record(&sets, "api.example.com", "A").unwrap().resource_records()[0].value(), "192.0.2.9");

    // The stack's own records converge: created, then updated in place, then unchanged.
    let own = r#"
stack("dns");
dns_record("example.com", #{ name: "www.example.com", type: "CNAME", values: [vars.target], ttl: 120 });
"#;
    deck.run(own, &["--var", "target=app.example.com"]).success().stdout_has("+ dns_record www.example.com CNAME");
    deck.run(own, &["--var", "target=web.example.com"])
        .success()
        .stdout_has("~ dns_record www.example.com CNAME")
        .stdout_has("app.example.com (ttl 120) -> web.example.com (ttl 120)");
    let (again, requests) = deck.recorded(|| deck.run(own, &["--var", "target=web.example.com"]));
    again.success().stdout_has("0 created, 0 updated, 1 unchanged");
    requests.assert_read_only();
    let sets = records(&deck, &zone_id);
    assert_eq!(record(&sets, "www.example.com", "CNAME").unwrap().resource_records()[0].value(), "web.example.com");

    // Another stack may not take the name over.
    let thief = own.replace("stack(\"dns\")", "stack(\"other\")");
    deck.run(&thief, &["--var", "target=evil.example.com"]).failure().stderr_has("it belongs to stack dns");
}

#[test]
fn the_stdlib_takes_domain_and_zone() {
    let deck = Deck::new();
    create_zone(&deck, "example.com");
    let script = r#"
import "fargate" as fargate;
stack("web");
let web = fargate::web_service(#{ name: "web", image: "nginx", domain: "web.example.com", zone: "example.com",
                                  certificate_arn: vars.certificate_arn });
print(web.url);
"#;
    let (plan, requests) = deck.recorded(|| deck.plan(script, &[]));
    plan.success()
        .stdout_has("+ certificate web.example.com")
        .stdout_has("+ listener web:443")
        .stdout_has("+ dns_record web.example.com A+AAAA")
        .stdout_has("https://web.example.com");
    requests.assert_read_only();
    deck.plan(script, &["--var", "certificate_arn=arn:aws:acm:us-west-2:123456789012:certificate/x"])
        .failure()
        .stderr_has("`domain` and `certificate_arn` exclude each other");
}

/// A stack with one certificate and nothing else.
const CERTIFICATE: &str = r#"stack("certs");
certificate(#{ domain: "app.example.com", zone: "example.com" });
"#;

#[test]
fn a_validation_cname_an_ec_certificate_still_needs_is_kept() {
    let deck = Deck::new();
    let zone_id = create_zone(&deck, "example.com");
    deck.run(CERTIFICATE, &[]).success().stdout_has("+ certificate app.example.com");
    // Someone else's certificate for the same name, with an EC key. ACM asks for one CNAME per
    // name per account, so it renews through the record the stack wrote. ListCertificates shows it
    // only when asked for its key type.
    let aws = deck.aws();
    let ec = aws
        .block_on(
            aws.acm
                .request_certificate()
                .domain_name("app.example.com")
                .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
                .key_algorithm(aws_sdk_acm::types::KeyAlgorithm::EcPrime256v1)
                .send(),
        )
        .expect("RequestCertificate")
        .certificate_arn()
        .expect("an ARN")
        .to_string();
    let described = aws.block_on(aws.acm.describe_certificate().certificate_arn(&ec).send()).unwrap();
    let described = described.certificate().unwrap();
    assert_eq!(described.key_algorithm().map(|k| k.as_str()), Some("EC_prime256v1"));
    let wanted = described.domain_validation_options()[0].resource_record().expect("a validation record").clone();

    deck.deckhand(&["destroy", "--stack", "certs", "--yes"]).success();
    let left: Vec<String> = certificates(&deck, "app.example.com").into_iter().map(|(arn, _)| arn).collect();
    assert_eq!(left, Vec::<String>::new(), "the stack's certificate is gone");
    let sets = records(&deck, &zone_id);
    let cname = record(&sets, wanted.name().trim_end_matches('.'), "CNAME")
        .unwrap_or_else(|| panic!("the CNAME the EC certificate needs is kept: {sets:?}"));
    assert_eq!(cname.resource_records()[0].value(), wanted.value());
}

#[test]
fn a_certificate_requested_again_within_the_hour_is_a_new_one() {
    // ACM dedupes requests on their idempotency token for an hour, even when that certificate has
    // since been deleted: a token derived from the names would get the dead certificate back.
    let deck = Deck::new();
    create_zone(&deck, "example.com");
    deck.run(CERTIFICATE, &[]).success();
    let first = certificates(&deck, "app.example.com");
    assert_eq!(first.len(), 1, "{first:?}");
    deck.deckhand(&["destroy", "--stack", "certs", "--yes"]).success();
    deck.run(CERTIFICATE, &[]).success().stdout_has("+ certificate app.example.com");
    let second = certificates(&deck, "app.example.com");
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second[0].0, first[0].0, "a new certificate, not the deleted one");
    assert_eq!(second[0].1, "ISSUED");
}

#[test]
fn a_record_changes_to_a_cname_and_back_in_one_run_each() {
    let deck = Deck::new();
    let zone_id = create_zone(&deck, "example.com");
    let a = r#"stack("dns");
dns_record("example.com", #{ name: "api.example.com", type: "A", values: ["192.0.2.1"] });
"#;
    let cname = r#"stack("dns");
dns_record("example.com", #{ name: "api.example.com", type: "CNAME", values: ["app.example.com"] });
"#;
    let types_at = |deck: &Deck| {
        let sets = records(deck, &zone_id);
        let types: Vec<String> = sets
            .iter()
            .filter(|s| s.name().trim_end_matches('.') == "api.example.com")
            .map(|s| s.r#type().as_str().to_string())
            .collect();
        let marker = record(&sets, "_deckhand.api.example.com", "TXT")
            .map(|m| m.resource_records().iter().map(|r| r.value().to_string()).collect::<Vec<_>>());
        (types, marker)
    };
    deck.run(a, &[]).success();
    // A CNAME may not share its name with the A record: the old type goes in the same change batch.
    deck.run(cname, &[]).success().stdout_has("+ dns_record api.example.com CNAME");
    assert_eq!(types_at(&deck), (vec!["CNAME".to_string()], Some(vec!["\"deckhand:stack=dns type=CNAME\"".into()])));
    let (again, requests) = deck.recorded(|| deck.run(cname, &[]));
    again.success().stdout_has("0 created, 0 updated");
    requests.assert_read_only();
    deck.run(a, &[]).success().stdout_has("+ dns_record api.example.com A");
    assert_eq!(types_at(&deck), (vec!["A".to_string()], Some(vec!["\"deckhand:stack=dns type=A\"".into()])));

    // A CNAME at the zone apex is refused at its line before anything is sent.
    let apex = r#"stack("dns");
dns_record("example.com", #{ name: "example.com", type: "CNAME", values: ["app.example.com"] });
"#;
    let (refused, requests) = deck.recorded(|| deck.run(apex, &[]));
    refused.failure().stderr_has("zone apex example.com").stderr_has("deploy.rhai:2:");
    requests.assert_read_only();
}

#[test]
fn a_validation_cname_the_replacing_certificate_still_needs_survives_the_old_ones_deletion() {
    // ACM asks for one CNAME per name per account: a new certificate that keeps a name of the one
    // it replaces validates (and later renews) through the same record, which pruning the old
    // certificate must not take with it.
    let deck = Deck::new();
    let zone_id = create_zone(&deck, "example.com");
    deck.run(CERTIFICATE, &[]).success().stdout_has("+ certificate app.example.com");
    let old = certificates(&deck, "app.example.com");
    let aws = deck.aws();
    let described = aws.block_on(aws.acm.describe_certificate().certificate_arn(&old[0].0).send()).unwrap();
    let shared = described.certificate().unwrap().domain_validation_options()[0].resource_record().unwrap().clone();

    let replaced = r#"stack("certs");
certificate(#{ domain: "www.example.com", alternative_names: ["app.example.com"], zone: "example.com" });
"#;
    deck.run(replaced, &["--yes"])
        .success()
        .stdout_has("+ certificate www.example.com")
        .stdout_has("- certificate app.example.com");
    assert_eq!(certificates(&deck, "app.example.com"), Vec::<(String, String)>::new(), "the old one is gone");
    let new = certificates(&deck, "www.example.com");
    assert_eq!(new.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(), ["ISSUED"]);
    let sets = records(&deck, &zone_id);
    let cname = record(&sets, shared.name().trim_end_matches('.'), "CNAME")
        .unwrap_or_else(|| panic!("the CNAME both certificates need is kept: {sets:?}"));
    assert_eq!(cname.resource_records()[0].value(), shared.value());
    // And a re-run is a no-op: the record is the new certificate's now.
    let (again, requests) = deck.recorded(|| deck.run(replaced, &[]));
    again.success().stdout_has("0 created, 0 updated");
    requests.assert_read_only();
}

#[test]
fn records_at_one_name_go_out_one_after_the_other_and_its_marker_names_each() {
    // Creates go out ahead of the script together, but a dns_record's create writes the whole
    // ownership marker of its name: two at one name sent together would each write it without
    // the other's entry. The second waits for its statement; a record at another name does not.
    let deck = Deck::new();
    let zone_id = create_zone(&deck, "example.com");
    let script = r#"stack("dns");
dns_record("example.com", #{ name: "mail.example.com", type: "TXT", values: ["v=spf1 -all"] });
dns_record("example.com", #{ name: "mail.example.com", type: "MX", values: ["10 mx.example.com"] });
dns_record("example.com", #{ name: "www.example.com", type: "A", values: ["192.0.2.1"] });
"#;
    let (first, requests) = deck.recorded(|| deck.run(script, &[]));
    first
        .success()
        .stdout_has("+ dns_record mail.example.com TXT")
        .stdout_has("+ dns_record mail.example.com MX")
        .stdout_has("+ dns_record www.example.com A");
    // Route 53's REST actions read as method and path: ChangeResourceRecordSets is a POST to rrset.
    let changes: Vec<&str> = requests
        .0
        .iter()
        .filter(|r| r.service == "route53" && r.action.starts_with("POST ") && r.action.ends_with("/rrset"))
        .map(|r| r.body.as_str())
        .collect();
    assert_eq!(changes.len(), 3, "one change batch per record: {changes:?}");
    assert!(changes[2].contains("<Type>MX</Type>"), "the MX record goes last, at its statement: {changes:?}");
    let sets = records(&deck, &zone_id);
    assert!(record(&sets, "mail.example.com", "TXT").is_some() && record(&sets, "mail.example.com", "MX").is_some());
    let mut marker: Vec<String> = record(&sets, "_deckhand.mail.example.com", "TXT")
        .expect("the marker")
        .resource_records()
        .iter()
        .map(|r| r.value().to_string())
        .collect();
    marker.sort();
    assert_eq!(marker, ["\"deckhand:stack=dns type=MX\"", "\"deckhand:stack=dns type=TXT\""]);
    let (again, requests) = deck.recorded(|| deck.run(script, &[]));
    again.success().stdout_has("0 created, 0 updated, 3 unchanged");
    requests.assert_read_only();
}

#[test]
fn a_certificate_whose_validation_cname_is_taken_is_requested_once_and_the_rerun_goes_on_with_it() {
    // The certificate's create goes ahead of the script; when writing its validation CNAME is
    // refused, its statement goes on with the certificate requested, rather than another.
    let deck = Deck::new();
    let zone_id = create_zone(&deck, "example.com");
    let aws = deck.aws();
    // The name ACM asks for (one per name per account): a request of the test's own, deleted.
    let probe = aws
        .block_on(aws.acm.request_certificate().domain_name("app.example.com").validation_method("DNS".into()).send())
        .unwrap();
    let probe = probe.certificate_arn().unwrap().to_string();
    let described = aws.block_on(aws.acm.describe_certificate().certificate_arn(&probe).send()).unwrap();
    let option = &described.certificate().unwrap().domain_validation_options()[0];
    let taken = option.resource_record().unwrap().name().to_string();
    aws.block_on(aws.acm.delete_certificate().certificate_arn(&probe).send()).unwrap();
    let taken_by_someone = (taken.as_str(), "CNAME", "elsewhere.example.org");
    change_record(&deck, &zone_id, "CREATE", taken_by_someone);

    let script = r#"stack("dns");
log_group("/dns/app");
certificate(#{ domain: "app.example.com", zone: "example.com" });
"#;
    deck.run(script, &[])
        .failure()
        .stderr_has("exists in zone example.com with another value (elsewhere.example.org")
        .stderr_has("--> deploy.rhai:3:");
    assert_eq!(certificates(&deck, "app.example.com").len(), 1, "one certificate requested");

    // The record fixed, the next run validates the same certificate.
    change_record(&deck, &zone_id, "DELETE", taken_by_someone);
    deck.run(script, &[]).success().stdout_has("~ certificate app.example.com");
    let certs = certificates(&deck, "app.example.com");
    assert_eq!((certs.len(), certs[0].1.as_str()), (1, "ISSUED"), "{certs:?}");
}
