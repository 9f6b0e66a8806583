//! The `zookeeper` probe against real ZooKeeper servers (Debian's `zookeeper`
//! package on `default-jre-headless`): a standalone server with a TLS client
//! port, and a 3-member ensemble on three loopback addresses.
//! Set DBOPS_SKIP_REAL_SERVERS=1 to skip when the packages are missing.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::Duration;

use dbops_probes::testing::{self, TestCa, ZooKeeperEnsemble, zk_member_dns_name};
use dbops_probes::zookeeper::{self, MemberState, Mode};
use dbops_probes::{CertExpectation, Endpoint, ProbeError, TlsOptions};

const TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn standalone_server_answers_ruok_and_srvr_in_plaintext_and_over_tls() {
    if !testing::zookeeper_available() {
        return;
    }
    let ca = TestCa::new("zk test ca").unwrap();
    let zk = ZooKeeperEnsemble::start(1, Some(&ca)).unwrap();

    let plain = zk.plain_endpoint(0, TIMEOUT);
    let report = zookeeper::probe(&plain).unwrap();
    assert_eq!(report.stats.mode, Mode::Standalone);
    assert!(
        report.stats.version.starts_with("3."),
        "{}",
        report.stats.version
    );
    assert!(report.tls.is_none());

    // Four-letter words over the TLS client port, verified against the CA
    // and the member's DNS name while connecting to its IP.
    let secure = zk.members[0].secure_address().unwrap();
    let tls = TlsOptions::verify(ca.cert_pem.as_bytes(), zk_member_dns_name(0)).expecting(
        CertExpectation {
            serial: Some(zk.certs[0].serial.clone()),
            sha256: None,
        },
    );
    let report = zookeeper::probe(&Endpoint::plain(&secure, TIMEOUT).with_tls(tls)).unwrap();
    assert_eq!(report.stats.mode, Mode::Standalone);
    let session = report.tls.unwrap();
    assert!(session.verified);
    assert_eq!(session.leaf.serial, zk.certs[0].serial);

    // A client trusting another CA is refused by the probe.
    let other = TestCa::new("other").unwrap();
    let wrong = Endpoint::plain(&secure, TIMEOUT).with_tls(TlsOptions::verify(
        other.cert_pem.as_bytes(),
        zk_member_dns_name(0),
    ));
    let err = zookeeper::probe(&wrong).unwrap_err();
    assert!(matches!(err, ProbeError::Tls { .. }), "{err}");
}

#[test]
fn ensemble_has_one_leader_and_loses_quorum_safety_when_a_member_is_down() {
    if !testing::zookeeper_available() {
        return;
    }
    let mut zk = ZooKeeperEnsemble::start(3, None).unwrap();
    let judge = |zk: &ZooKeeperEnsemble| {
        let states: Vec<MemberState> = (0..3)
            .map(|i| MemberState {
                name: format!("zk-{i}"),
                stats: zookeeper::srvr(&zk.plain_endpoint(i, TIMEOUT)).map(|(stats, _)| stats),
            })
            .collect();
        zookeeper::judge_quorum(&states)
    };
    let quorum = judge(&zk);
    assert!(quorum.is_healthy(), "{quorum:?}");
    let leader = quorum.leader.clone().unwrap();
    assert_eq!(quorum.followers.len(), 2);
    for member in ["zk-0", "zk-1", "zk-2"] {
        assert!(quorum.can_lose(member, 3).is_ok());
    }

    // Stop a follower: the two others keep quorum, but no other member may restart now.
    let follower = quorum.followers[0].clone();
    let follower_index: usize = follower.trim_start_matches("zk-").parse().unwrap();
    zk.stop_member(follower_index);
    let degraded = judge(&zk);
    assert!(!degraded.is_healthy());
    assert_eq!(
        degraded.leader.as_deref(),
        Some(leader.as_str()),
        "{degraded:?}"
    );
    assert!(degraded.can_lose(&follower, 3).is_ok());
    let err = degraded.can_lose(&leader, 3).unwrap_err();
    assert!(err.contains(&follower), "{err}");

    // It comes back as a follower.
    zk.start_member(follower_index).unwrap();
    let healed = judge(&zk);
    assert!(healed.is_healthy(), "{healed:?}");
}
