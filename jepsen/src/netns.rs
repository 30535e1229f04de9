//! One network namespace per node, joined by a bridge: every node gets its own IP
//! (`10.77.<subnet>.<i+1>`), the test process (outside, on the bridge as `.254`) reaches all of
//! them, and partitions are made inside the nodes' namespaces.
//!
//! A partition makes node `a` silently drop inbound packets from node `b` — Jepsen's
//! `iptables -A INPUT -s b -j DROP` — with a policy-routing rule `from <b> blackhole` at a higher
//! priority than the `local` table (which is moved from priority 0 to 100 when the namespace is
//! made, so the rule applies to packets addressed to the node itself). No netfilter needed.
//! Connections between cut nodes stall and time out as on a real network.
//!
//! Everything made here (namespaces `kj<tag>-n<i>`, bridge `kj<tag>br`, veths `kj<tag>v<i>`) is
//! removed on drop; names left by a killed earlier run with the same tag are removed first.

use crate::partition::Grudge;
use std::io;
use std::net::Ipv4Addr;
use std::process::Command;

/// The namespaces, their bridge and the partition currently installed.
#[derive(Debug)]
pub struct Network {
    tag: String,
    subnet: u8,
    nodes: usize,
    installed: Option<Grudge>,
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Network {
    /// Makes `nodes` namespaces on a new bridge. `tag` (≤ 6 characters, unique per concurrent
    /// test) names the interfaces; `subnet` picks `10.77.<subnet>.0/24`.
    pub fn create(tag: &str, subnet: u8, nodes: usize) -> io::Result<Network> {
        assert!(
            tag.len() <= 6 && nodes < 200,
            "interface names have 15 characters"
        );
        let net = Network {
            tag: tag.to_string(),
            subnet,
            nodes,
            installed: None,
        };
        net.remove_all(); // a killed earlier run may have left them
        let bridge = net.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("10.77.{subnet}.254/24"),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..nodes {
            let ns = net.namespace(i);
            let host_end = format!("kj{tag}v{i}");
            let node_end = format!("kj{tag}p{i}");
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &host_end, "type", "veth", "peer", "name", &node_end,
            ])?;
            ip(&["link", "set", &node_end, "netns", &ns])?;
            ip(&["-n", &ns, "link", "set", &node_end, "name", "eth0"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", net.ip(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &ns, "rule", "add", "pref", "100", "lookup", "local"])?;
            ip(&["-n", &ns, "rule", "del", "pref", "0", "lookup", "local"])?;
            ip(&["link", "set", &host_end, "master", &bridge])?;
            ip(&["link", "set", &host_end, "up"])?;
        }
        Ok(net)
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes
    }

    /// True if there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes == 0
    }

    /// Node `i`'s namespace name (for `ip netns exec`).
    pub fn namespace(&self, i: usize) -> String {
        format!("kj{}-n{i}", self.tag)
    }

    /// Node `i`'s address.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, i as u8 + 1)
    }

    fn bridge(&self) -> String {
        format!("kj{}br", self.tag)
    }

    /// A command that runs `program` inside node `i`'s namespace (`ip netns exec` execs it, so
    /// the child's pid is the program's own).
    pub fn command(&self, i: usize, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.namespace(i)]).arg(program);
        c
    }

    /// Installs `grudge` (healing whatever was installed before).
    pub fn partition(&mut self, grudge: &Grudge) -> io::Result<()> {
        self.heal()?;
        self.drop_rules("add", grudge)?;
        self.installed = Some(grudge.clone());
        Ok(())
    }

    /// Removes the installed partition, if any.
    pub fn heal(&mut self) -> io::Result<()> {
        match self.installed.take() {
            Some(g) => self.drop_rules("del", &g),
            None => Ok(()),
        }
    }

    /// `ip rule add|del pref 10 from <source> blackhole` in each node's namespace, for every
    /// source its grudge names.
    fn drop_rules(&self, action: &str, grudge: &Grudge) -> io::Result<()> {
        for (node, sources) in grudge.drops.iter().enumerate() {
            for &src in sources {
                let from = self.ip(src).to_string();
                let ns = self.namespace(node);
                ip(&[
                    "-n",
                    &ns,
                    "rule",
                    action,
                    "pref",
                    "10",
                    "from",
                    &from,
                    "blackhole",
                ])?;
            }
        }
        Ok(())
    }

    fn remove_all(&self) {
        for i in 0..self.nodes {
            let _ = ip(&["netns", "del", &self.namespace(i)]);
            let _ = ip(&["link", "del", &format!("kj{}v{i}", self.tag)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove_all();
    }
}
