//! The partition mechanism itself: after `partition`, a node cannot open a connection to a node
//! whose grudge names it (the packets are dropped: the connection times out), nodes outside the
//! grudge and the test process still can, and `heal` restores everything. Uses python3 for a
//! listener and a connector inside the namespaces. Needs root, like the other jepsen tests.

use keel_jepsen::netns::Network;
use keel_jepsen::partition::Grudge;
use std::process::{Child, Command, Stdio};

const PORT: u16 = 5999;

/// The listener processes, killed on drop (also when an assertion fails: a surviving child
/// would hold the test's output pipe open and hang the test run).
struct Listeners(Vec<Child>);

impl Drop for Listeners {
    fn drop(&mut self) {
        for l in &mut self.0 {
            let _ = l.kill();
            let _ = l.wait();
        }
    }
}

fn listener(net: &Network, i: usize) -> Child {
    let script = format!(
        "import socket\n\
         s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{}', {PORT})); s.listen(64)\n\
         while True:\n    c, _ = s.accept(); c.close()\n",
        net.ip(i)
    );
    Command::new("ip")
        .args(["netns", "exec", &net.namespace(i), "python3", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("python3 listener")
}

/// Can node `from` (or the test process, for `None`) connect to node `to` within 1 s?
fn connects(net: &Network, from: Option<usize>, to: usize) -> bool {
    let script = format!(
        "import socket, sys\n\
         try:\n    socket.create_connection(('{}', {PORT}), timeout=1); sys.exit(0)\n\
         except Exception:\n    sys.exit(1)\n",
        net.ip(to)
    );
    let mut cmd = match from {
        Some(i) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &net.namespace(i), "python3"]);
            c
        }
        None => Command::new("python3"),
    };
    cmd.args(["-c", &script])
        .status()
        .expect("python3 connector")
        .success()
}

#[test]
fn a_partition_drops_exactly_what_its_grudge_says_and_heal_restores_it() {
    let tag = format!("t{}", std::process::id() % 1000);
    let mut net = match Network::create(&tag, 64, 3) {
        Ok(n) => n,
        Err(e) => {
            assert!(
                std::env::var_os("KEEL_REQUIRE_TOOLS").is_none(),
                "cannot make network namespaces: {e}"
            );
            eprintln!("skipped: cannot make network namespaces: {e}");
            return;
        }
    };
    let _listeners = Listeners((0..3).map(|i| listener(&net, i)).collect());
    // Wait for the listeners.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(0..3).all(|i| connects(&net, None, i)) {
        assert!(
            std::time::Instant::now() < deadline,
            "listeners did not start"
        );
    }
    assert!(connects(&net, Some(0), 1) && connects(&net, Some(2), 1));

    // n1 drops n0 (and, symmetric, n0 drops n1); n2 is in n1's component.
    let grudge = Grudge::from_components(3, &[vec![0], vec![1, 2]]);
    net.partition(&grudge).unwrap();
    assert!(
        !connects(&net, Some(0), 1),
        "n0 reached n1 through the partition"
    );
    assert!(
        !connects(&net, Some(1), 0),
        "n1 reached n0 through the partition"
    );
    assert!(
        !connects(&net, Some(0), 2),
        "n0 reached n2 through the partition"
    );
    assert!(connects(&net, Some(2), 1), "n2 and n1 are on the same side");
    assert!(
        connects(&net, None, 0) && connects(&net, None, 1),
        "the test process reaches all"
    );

    net.heal().unwrap();
    assert!(connects(&net, Some(0), 1), "still cut after heal");
    assert!(connects(&net, Some(1), 0), "still cut after heal");
}
