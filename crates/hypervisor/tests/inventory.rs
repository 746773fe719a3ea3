mod common;

use vnext_core::hypervisor::ConsoleType;
use vnext_hypervisor::Inventory;
use vnext_hypervisor::inventory::DriverConfig;

fn error_of(toml: &str) -> String {
    Inventory::parse(toml, "deploy/inv.toml").unwrap_err().to_string()
}

const P1: &str = "11111111-1111-4111-8111-111111111111";
const P2: &str = "22222222-2222-4222-8222-222222222222";
const P3: &str = "33333333-3333-4333-8333-333333333333";

#[test]
fn sample_inventory_loads_with_a_tree_of_placements_and_four_nodes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/sample-inventory.toml");
    let inv = Inventory::load(path).unwrap();
    assert_eq!(inv.placements.len(), 4);
    assert_eq!(inv.nodes.len(), 4);
    let by_name = |n: &str| inv.placements.iter().find(|p| p.name == n).unwrap();
    assert!(by_name("region-one").parent_ids.is_empty());
    assert_eq!(by_name("rack-a1").parent_ids, vec![by_name("zone-a").id.clone()]);
    assert_eq!(by_name("zone-b").parent_ids, vec![by_name("region-one").id.clone()]);
    let DriverConfig::Fake(fake) = &inv.driver;
    assert_eq!(fake.step_delay_ms, 300);
    assert_eq!(fake.fail.len(), 1);
    assert_eq!(fake.timeout.len(), 1);
    let big = inv.nodes.iter().find(|n| n.hostname == "cn-b-big").unwrap();
    assert_eq!(big.console_types.len(), 4);
}

#[test]
fn references_by_name_or_32_hex_id_resolve_to_hyphenated_ids() {
    let toml = format!(
        r#"
[[placement]]
id = "{}"
name = "a"
[[placement]]
id = "{P2}"
name = "b"
parents = ["a"]
[[placement]]
id = "{P3}"
name = "c"
parents = ["b", "{}"]   # two parents: overlapping hierarchies are allowed
[[compute_node]]
id = "44444444444444444444444444444444"
hostname = "n1"
placements = ["c"]
memory_mb = 1
cpu_units = 1
disk_gb = 1
console_types = ["spice", "spice"]
"#,
        P1.replace('-', "").to_uppercase(),
        P1
    );
    let inv = Inventory::parse(&toml, "inv.toml").unwrap();
    assert_eq!(inv.placements[0].id, P1);
    assert_eq!(inv.placements[2].parent_ids, vec![P2.to_string(), P1.to_string()]);
    assert_eq!(inv.nodes[0].id, "44444444-4444-4444-4444-444444444444");
    assert_eq!(inv.nodes[0].placement_ids, vec![P3.to_string()]);
    assert_eq!(inv.nodes[0].console_types, vec![ConsoleType::Spice]);
    assert!(inv.nodes[0].enabled, "enabled defaults to true");
    // No [driver] table: the fake driver with its default delay.
    let DriverConfig::Fake(fake) = &inv.driver;
    assert_eq!(fake.step_delay_ms, 200);
}

#[test]
fn unknown_parent_is_reported_with_file_entry_and_reference() {
    let err = error_of(&format!("[[placement]]\nid = \"{P1}\"\nname = \"a\"\nparents = [\"nope\"]\n"));
    assert!(err.starts_with("deploy/inv.toml: placement \"a\": "), "{err}");
    assert!(err.contains("parent \"nope\" is neither the id nor the name of a placement"), "{err}");
}

#[test]
fn parent_cycle_is_rejected_and_named() {
    let err = error_of(&format!(
        "[[placement]]\nid = \"{P1}\"\nname = \"a\"\nparents = [\"c\"]\n\
         [[placement]]\nid = \"{P2}\"\nname = \"b\"\nparents = [\"a\"]\n\
         [[placement]]\nid = \"{P3}\"\nname = \"c\"\nparents = [\"b\"]\n"
    ));
    assert!(err.contains("parents form a cycle"), "{err}");
    assert!(err.contains("a -> c -> b -> a"), "{err}");
}

#[test]
fn self_parent_is_rejected() {
    let err = error_of(&format!("[[placement]]\nid = \"{P1}\"\nname = \"a\"\nparents = [\"a\"]\n"));
    assert!(err.contains("lists itself as a parent"), "{err}");
}

#[test]
fn duplicate_ids_names_and_hostnames_are_rejected() {
    let err = error_of(&format!(
        "[[placement]]\nid = \"{P1}\"\nname = \"a\"\n[[placement]]\nid = \"{P1}\"\nname = \"b\"\n"
    ));
    assert!(err.contains("placement \"b\"") && err.contains("ids must be unique"), "{err}");
    let err = error_of(&format!(
        "[[placement]]\nid = \"{P1}\"\nname = \"a\"\n[[placement]]\nid = \"{P2}\"\nname = \"a\"\n"
    ));
    assert!(err.contains("names must be unique"), "{err}");
    let node = |id: &str| {
        format!("[[compute_node]]\nid = \"{id}\"\nhostname = \"n\"\nplacements = [\"a\"]\nmemory_mb = 1\ncpu_units = 1\ndisk_gb = 1\n")
    };
    let err = error_of(&format!("[[placement]]\nid = \"{P1}\"\nname = \"a\"\n{}{}", node(P2), node(P3)));
    assert!(err.contains("compute_node \"n\": hostname is used by an earlier compute node"), "{err}");
}

#[test]
fn bad_node_fields_are_rejected_with_what_to_fix() {
    let base = format!("[[placement]]\nid = \"{P1}\"\nname = \"a\"\n");
    let node = |extra: &str| format!("{base}[[compute_node]]\nid = \"{P2}\"\nhostname = \"n1\"\n{extra}");
    let err = error_of(&node("placements = [\"zzz\"]\nmemory_mb = 1\ncpu_units = 1\ndisk_gb = 1\n"));
    assert!(err.contains("compute_node \"n1\": placement \"zzz\" is neither"), "{err}");
    let err = error_of(&node("placements = []\nmemory_mb = 1\ncpu_units = 1\ndisk_gb = 1\n"));
    assert!(err.contains("list at least one placement"), "{err}");
    let err = error_of(&node("placements = [\"a\"]\nmemory_mb = 0\ncpu_units = 1\ndisk_gb = 1\n"));
    assert!(err.contains("must all be greater than 0"), "{err}");
    let err = error_of(&node("placements = [\"a\"]\nmemory_mb = 1\ncpu_units = 1\ndisk_gb = 1\nconsole_types = [\"vga\"]\n"));
    assert!(err.contains("deploy/inv.toml: not a valid inventory") && err.contains("vga"), "{err}");
    let err = error_of(&format!("{base}[[compute_node]]\nid = \"not-a-uuid\"\nhostname = \"n1\"\nplacements = [\"a\"]\nmemory_mb = 1\ncpu_units = 1\ndisk_gb = 1\n"));
    assert!(err.contains("compute_node \"n1\": id \"not-a-uuid\" is not a UUID"), "{err}");
    let err = error_of(&node("placements = [\"a\"]\nmemory_mb = 1\ncpu_units = 1\ndisk_gb = 1\nram = 5\n"));
    assert!(err.contains("unknown field `ram`"), "{err}");
}

#[test]
fn driver_table_is_validated() {
    let err = error_of("[driver]\nkind = \"libvirt\"\n");
    assert!(err.contains("driver: kind \"libvirt\" is not supported"), "{err}");
    let err = error_of("[driver]\nkind = \"fake\"\naction_delay_ms = { spwan = 5 }\n");
    assert!(err.contains("driver.action_delay_ms: unknown action \"spwan\""), "{err}");
    let err = error_of("[driver]\nkind = \"fake\"\n[[driver.fail]]\naction = \"spawn\"\nerror = \"\"\n");
    assert!(err.contains("driver.fail[0]: error is empty"), "{err}");
    let err = error_of("[driver]\nkind = \"fake\"\n[[driver.timeout]]\naction = \"explode\"\nerror = \"x\"\n");
    assert!(err.contains("driver.timeout[0]: unknown action \"explode\""), "{err}");
}

#[test]
fn tags_must_fit_the_api_rules() {
    let err = error_of(&format!("[[placement]]\nid = \"{P1}\"\nname = \"a\"\ntags = [\"a/b\"]\n"));
    assert!(err.contains("no '/' or ','"), "{err}");
}

#[test]
fn missing_file_error_names_the_path() {
    let err = Inventory::load("/nonexistent/inventory.toml").unwrap_err().to_string();
    assert!(err.starts_with("cannot read /nonexistent/inventory.toml"), "{err}");
}

fn node_toml(hostname: &str, id: &str, extra: &str) -> String {
    format!(
        "[[compute_node]]\nid = \"{id}\"\nhostname = \"{hostname}\"\nplacements = [\"a\"]\nmemory_mb = 1\ncpu_units = 1\ndisk_gb = 1\n{extra}"
    )
}

#[test]
fn libvirt_nodes_serve_vnc_consoles_unless_the_inventory_lists_others() {
    let toml = format!(
        "[[placement]]\nid = \"{P1}\"\nname = \"a\"\n{}{}{}{}",
        node_toml("lv-default", "44444444-4444-4444-8444-444444444441", "driver = \"libvirt\"\nlibvirt_uri = \"qemu:///system\"\n"),
        node_toml("lv-listed", "44444444-4444-4444-8444-444444444442", "driver = \"libvirt\"\nlibvirt_uri = \"qemu:///system\"\nconsole_types = [\"novnc\"]\n"),
        node_toml("lv-none", "44444444-4444-4444-8444-444444444443", "driver = \"libvirt\"\nlibvirt_uri = \"qemu:///system\"\nconsole_types = []\n"),
        node_toml("fake", "44444444-4444-4444-8444-444444444444", ""),
    );
    let inv = Inventory::parse(&toml, "inv.toml").unwrap();
    let types = |h: &str| inv.nodes.iter().find(|n| n.hostname == h).unwrap().console_types.clone();
    assert_eq!(types("lv-default"), vec![ConsoleType::Novnc, ConsoleType::Xvpvnc]);
    assert_eq!(types("lv-listed"), vec![ConsoleType::Novnc], "an explicit list is kept");
    assert_eq!(types("lv-none"), vec![], "an explicit empty list is kept");
    assert_eq!(types("fake"), vec![], "fake nodes serve what they list");
}

#[test]
fn the_console_proxy_table_has_defaults() {
    let inv = Inventory::parse("", "inv.toml").unwrap();
    assert_eq!(inv.console_proxy.listen.to_string(), "127.0.0.1:6080");
    assert_eq!(inv.console_proxy.public_url, None, "http://<listen> once bound");
    assert_eq!(inv.console_proxy.token_ttl, std::time::Duration::from_secs(600));
    let inv = Inventory::parse(
        "[console_proxy]\nlisten = \"0.0.0.0:6081\"\npublic_url = \"https://console.example.org/\"\ntoken_ttl_seconds = 30\n",
        "inv.toml",
    )
    .unwrap();
    assert_eq!(inv.console_proxy.listen.to_string(), "0.0.0.0:6081");
    assert_eq!(inv.console_proxy.public_url.as_deref(), Some("https://console.example.org"), "no trailing slash");
    assert_eq!(inv.console_proxy.token_ttl, std::time::Duration::from_secs(30));
    assert_eq!(inv.console_proxy.web, None);
    let inv = Inventory::parse("[console_proxy]\nlisten = \"[::1]:7000\"\nweb = \"novnc\"\n", "/etc/vnext/inv.toml").unwrap();
    assert_eq!(inv.console_proxy.listen.to_string(), "[::1]:7000");
    assert_eq!(inv.console_proxy.web.as_deref(), Some(std::path::Path::new("/etc/vnext/novnc")), "relative to the file");
}

#[test]
fn a_bad_console_proxy_key_is_named() {
    let err = error_of("[console_proxy]\nlisten_on = \"127.0.0.1:6080\"\n");
    assert!(err.contains("unknown field `listen_on`"), "{err}");
    let err = error_of("[console_proxy]\nlisten = \"localhost\"\n");
    assert!(err.contains("deploy/inv.toml: console_proxy: listen \"localhost\" is not an address"), "{err}");
    let err = error_of("[console_proxy]\npublic_url = \"console.example.org\"\n");
    assert!(err.contains("console_proxy: public_url \"console.example.org\" must be an http:// or https://"), "{err}");
    let err = error_of("[console_proxy]\ntoken_ttl_seconds = 0\n");
    assert!(err.contains("console_proxy: token_ttl_seconds 0 must be between 1 and 86400"), "{err}");
    let err = error_of("[console_proxy]\nlisten = \"0.0.0.0:6080\"\n");
    assert!(err.contains("console_proxy: listen 0.0.0.0:6080 accepts on every address") && err.contains("public_url"), "{err}");
    let err = error_of("[console_proxy]\ntoken_ttl_seconds = \"10\"\n");
    assert!(err.contains("token_ttl_seconds"), "{err}");
}

#[test]
fn the_sample_libvirt_inventory_loads_with_its_console_proxy() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/libvirt-inventory.toml");
    let inv = Inventory::load(path).unwrap();
    assert_eq!(inv.console_proxy.listen.to_string(), "127.0.0.1:6080");
    assert_eq!(inv.console_proxy.web.as_deref(), Some(std::path::Path::new("/usr/share/novnc")));
    assert!(inv.nodes.iter().all(|n| n.console_types == [ConsoleType::Novnc, ConsoleType::Xvpvnc]));
}

#[test]
fn fake_nodes_share_a_live_migration_group_and_libvirt_nodes_name_theirs() {
    let lv = |uri: &str, group: &str| format!("driver = \"libvirt\"\nlibvirt_uri = \"{uri}\"\n{group}");
    let toml = format!(
        "[[placement]]\nid = \"{P1}\"\nname = \"a\"\n{}{}{}{}{}",
        node_toml("fake-1", "44444444-4444-4444-8444-444444444441", ""),
        node_toml("fake-own", "44444444-4444-4444-8444-444444444442", "live_migration_group = \"edge\"\n"),
        node_toml("lv-cold", "44444444-4444-4444-8444-444444444443", &lv("qemu:///system", "")),
        node_toml("lv-1", "44444444-4444-4444-8444-444444444444", &lv("qemu+ssh://one/system", "live_migration_group = \"rack\"\n")),
        node_toml("lv-2", "44444444-4444-4444-8444-444444444445", &lv("qemu+ssh://two/system", "live_migration_group = \"rack\"\n")),
    );
    let inv = Inventory::parse(&toml, "inv.toml").unwrap();
    let group = |h: &str| inv.nodes.iter().find(|n| n.hostname == h).unwrap().live_migration_group.clone();
    assert_eq!(group("fake-1").as_deref(), Some("fake"), "the fake driver moves anything anywhere");
    assert_eq!(group("fake-own").as_deref(), Some("edge"));
    assert_eq!(group("lv-cold"), None, "libvirt nodes move cold unless the operator says otherwise");
    assert_eq!((group("lv-1"), group("lv-2")), (Some("rack".into()), Some("rack".into())));
}

#[test]
fn a_live_migration_group_that_cannot_work_is_refused_naming_the_nodes() {
    let place = format!("[[placement]]\nid = \"{P1}\"\nname = \"a\"\n");
    let lv = |uri: &str| format!("driver = \"libvirt\"\nlibvirt_uri = \"{uri}\"\nlive_migration_group = \"g\"\n");
    let one_daemon = format!(
        "{place}{}{}",
        node_toml("lv-1", "44444444-4444-4444-8444-444444444441", &lv("qemu:///system")),
        node_toml("lv-2", "44444444-4444-4444-8444-444444444442", &lv("qemu:///system")),
    );
    let err = error_of(&one_daemon);
    assert!(err.contains("lv-2") && err.contains("lv-1") && err.contains("cannot migrate to itself"), "{err}");

    let test_driver = format!("{place}{}", node_toml("lv-t", "44444444-4444-4444-8444-444444444441", &lv("test:///default")));
    assert!(error_of(&test_driver).contains("test driver cannot migrate"), "{}", error_of(&test_driver));

    let mixed = format!(
        "{place}{}{}",
        node_toml("lv-1", "44444444-4444-4444-8444-444444444441", &lv("qemu:///system")),
        node_toml("fake-g", "44444444-4444-4444-8444-444444444442", "live_migration_group = \"g\"\n"),
    );
    assert!(error_of(&mixed).contains("another driver"), "{}", error_of(&mixed));

    let empty = format!("{place}{}", node_toml("f", "44444444-4444-4444-8444-444444444441", "live_migration_group = \" \"\n"));
    assert!(error_of(&empty).contains("live_migration_group is empty"), "{}", error_of(&empty));
}
