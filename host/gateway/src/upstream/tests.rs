use std::net::SocketAddr;
use std::path::Path;

use super::*;
use crate::config::Config;

fn upstream(extra: &str) -> Upstream {
    let text = format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
listener = "web"
upstream = "up"

[[upstream]]
name = "up"
targets = [ {{ address = "127.0.0.1:2001" }}, {{ address = "127.0.0.1:2002" }} ]
{extra}
"#
    );
    let config = Config::parse(&text, Path::new("x.toml")).unwrap();
    Upstream::new(config.upstreams[0].clone())
}

fn rotation(upstream: &Upstream) -> Vec<u16> {
    upstream.targets().targets.iter().map(|t| t.address.port()).collect()
}

const A: &str = "127.0.0.1:2001";

#[test]
fn a_drained_target_stays_out_through_health_and_discovery_changes() {
    let up = upstream("health_check = { kind = \"tcp\" }");
    let a: SocketAddr = A.parse().unwrap();
    assert_eq!(up.drain(A, true), Some(a));
    assert_eq!(rotation(&up), [2002]);
    up.set_health(a, Health::Unhealthy);
    up.set_health(a, Health::Healthy);
    assert_eq!(rotation(&up), [2002], "a passing health check does not undrain");
    let b = up.targets().targets[0].clone_config();
    up.set_discovered(vec![b.clone()]);
    up.set_discovered(vec![TargetConfig { address: a, authority: A.into(), weight: 1 }, b]);
    up.set_health(a, Health::Healthy);
    assert_eq!(rotation(&up), [2002], "a target that went and came back is still drained");
    let (_, status) = up.status();
    assert!(status.iter().any(|t| t.address == a && t.drained && !t.in_rotation));

    assert_eq!(up.drain(A, false), Some(a));
    assert_eq!(rotation(&up), [2001, 2002]);
}

#[test]
fn unknown_targets_are_not_found_and_a_changed_upstream_keeps_its_drains() {
    let up = upstream("");
    assert_eq!(up.drain("127.0.0.1:9", true), None);
    assert_eq!(up.drain("not an address", false), None);
    up.drain(A, true);
    let changed = upstream("retries = 2");
    let successor = Upstream::succeeding(changed.config.clone(), Some(&up));
    assert_eq!(rotation(&successor), [2002]);
    assert_eq!(rotation(&Upstream::succeeding(changed.config.clone(), None)), [2001, 2002]);
}

impl Target {
    fn clone_config(&self) -> TargetConfig {
        TargetConfig {
            address: self.address,
            authority: self.authority.to_str().unwrap_or_default().to_owned(),
            weight: self.weight,
        }
    }
}
