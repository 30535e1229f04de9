//! The snapshot lane: a snapshot travels on its own connection, cut into CRC-checked chunks,
//! so heartbeats and appends on the message lane never wait behind it.
//!
//! ```text
//! sender                                   receiver
//!   -- Hello(lane = Snapshots) ------------->
//!   <------------------------------ Reply --
//!   -- SnapshotBegin{id, total_len, crc} --->   checks total_len <= max_snapshot_bytes
//!   -- SnapshotChunk × n ------------------->   appends, never beyond total_len
//!   -- SnapshotEnd ------------------------->   checks length and whole-snapshot CRC,
//!                                               hands the bytes to the owner's inbox
//!   <--------------- SnapshotAck{id, ok|why} --
//! ```
//! The sender turns the ack (or any failure on the way) into `PeerEvent::SnapshotStatus`.

use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::core::Core;
use super::frame::{read_frame, write_frame, FrameError, FrameKind, SnapshotAck, SnapshotBegin};
use super::handshake::Lane;
use super::inbox::PeerEvent;
use super::outbound::{dial, PeerLink};
use super::stats::add;

/// Sends one snapshot and waits for the receiver's verdict. Runs on its own thread.
pub(crate) fn send_snapshot(
    core: &Arc<Core>,
    link: &PeerLink,
    snapshot_id: u64,
    data: &[u8],
) -> Result<(), String> {
    let cfg = &core.config;
    let addr = *link.addr.lock();
    let (stream, _guard) = dial(core, link.id, addr, Lane::Snapshots)
        .map_err(|e| format!("cannot reach peer {:#x} at {addr}: {e}", link.id))?;
    let io_err = |what: &str, e: std::io::Error| {
        format!("snapshot {snapshot_id} to peer {:#x}: {what}: {e}", link.id)
    };
    let mut writer = BufWriter::with_capacity(
        256 << 10,
        stream.try_clone().map_err(|e| io_err("clone", e))?,
    );
    let begin = SnapshotBegin {
        snapshot_id,
        total_len: data.len() as u64,
        crc: crc32fast::hash(data),
    };
    write_frame(&mut writer, FrameKind::SnapshotBegin, &begin.encode())
        .map_err(|e| io_err("write", e))?;
    let started = Instant::now();
    let mut sent: u64 = 0;
    for chunk in data.chunks(cfg.snapshot_chunk_bytes) {
        if core.stopping() {
            return Err("transport shutting down".into());
        }
        write_frame(&mut writer, FrameKind::SnapshotChunk, chunk)
            .map_err(|e| io_err("write", e))?;
        sent += chunk.len() as u64;
        if let Some(rate) = cfg.snapshot_rate_limit.filter(|r| *r > 0) {
            writer.flush().map_err(|e| io_err("write", e))?;
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    write_frame(&mut writer, FrameKind::SnapshotEnd, &[]).map_err(|e| io_err("write", e))?;
    writer.flush().map_err(|e| io_err("write", e))?;
    drop(writer);
    let mut stream = stream;
    stream
        .set_read_timeout(Some(cfg.snapshot_ack_timeout))
        .map_err(|e| io_err("set timeout", e))?;
    let frame = read_frame(&mut stream, 64 << 10).map_err(|e| {
        format!(
            "snapshot {snapshot_id} to peer {:#x}: no acknowledgement: {e}",
            link.id
        )
    })?;
    let ack = (frame.kind == FrameKind::SnapshotAck)
        .then(|| SnapshotAck::decode(&frame.payload))
        .flatten()
        .filter(|ack| ack.snapshot_id == snapshot_id)
        .ok_or_else(|| {
            format!(
                "snapshot {snapshot_id} to peer {:#x}: malformed acknowledgement",
                link.id
            )
        })?;
    ack.result
        .map_err(|why| format!("peer {:#x} rejected snapshot {snapshot_id}: {why}", link.id))
}

/// Receives snapshots on an accepted snapshot-lane connection until it closes.
pub(crate) fn receive_snapshots(
    core: &Arc<Core>,
    stream: TcpStream,
    from: u64,
    remote: SocketAddr,
) {
    let mut ack_stream = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            core.note_protocol_error(format!(
                "snapshot connection from member {from:#x} at {remote}: {e}"
            ));
            return;
        }
    };
    let mut reader = BufReader::with_capacity(256 << 10, stream);
    loop {
        let begin = match read_frame(&mut reader, SnapshotBegin::LEN as u32) {
            Ok(frame) if frame.kind == FrameKind::SnapshotBegin => {
                match SnapshotBegin::decode(&frame.payload) {
                    Some(begin) => begin,
                    None => return bad(core, from, remote, "malformed snapshot header".into()),
                }
            }
            Ok(frame) => {
                return bad(
                    core,
                    from,
                    remote,
                    format!("expected a snapshot header, got {:?}", frame.kind),
                )
            }
            Err(FrameError::Closed) => return,
            Err(e) => return bad(core, from, remote, e.to_string()),
        };
        let id = begin.snapshot_id;
        let received = match &core.config.snapshot_spool_dir {
            None => receive_one(core, &mut reader, begin).map(|data| PeerEvent::Snapshot {
                from,
                snapshot_id: id,
                data,
            }),
            Some(dir) => {
                let path = dir.join(format!("snapshot-{from:x}-{id}.in"));
                let len = begin.total_len;
                receive_to_file(core, &mut reader, begin, &path).map(|()| PeerEvent::SnapshotFile {
                    from,
                    snapshot_id: id,
                    path,
                    len,
                })
            }
        };
        match received {
            Ok(event) => {
                let stop = || core.stopping();
                if core.events.deliver(event, &stop).is_err() {
                    return;
                }
                add(&core.counters.snapshots_received, 1);
                let ack = SnapshotAck {
                    snapshot_id: id,
                    result: Ok(()),
                };
                if write_frame(&mut ack_stream, FrameKind::SnapshotAck, &ack.encode()).is_err() {
                    return;
                }
            }
            Err(why) => {
                add(&core.counters.snapshots_rejected, 1);
                let ack = SnapshotAck {
                    snapshot_id: id,
                    result: Err(why.clone()),
                };
                let _ = write_frame(&mut ack_stream, FrameKind::SnapshotAck, &ack.encode());
                return bad(core, from, remote, format!("snapshot {id} rejected: {why}"));
            }
        }
    }
}

fn bad(core: &Core, from: u64, remote: SocketAddr, why: String) {
    if !core.stopping() {
        core.note_protocol_error(format!(
            "closed snapshot connection from member {from:#x} at {remote}: {why}"
        ));
    }
}

/// Reads chunks up to the end marker into the file at `path` (replaced if it exists) and
/// verifies length and CRC; on any failure the file is removed.
fn receive_to_file(
    core: &Core,
    reader: &mut BufReader<TcpStream>,
    begin: SnapshotBegin,
    path: &std::path::Path,
) -> Result<(), String> {
    let result = (|| {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut crc = crc32fast::Hasher::new();
        let written = receive_chunks(core, reader, &begin, |chunk| {
            crc.update(chunk);
            out.write_all(chunk)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        })?;
        out.flush()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        check_whole(&begin, written, crc.finalize())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Reads chunk frames up to the end marker, handing each payload to `sink`; refuses more bytes
/// than announced. Returns the number of bytes received.
fn receive_chunks(
    core: &Core,
    reader: &mut BufReader<TcpStream>,
    begin: &SnapshotBegin,
    mut sink: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<u64, String> {
    let cfg = &core.config;
    if begin.total_len > cfg.max_snapshot_bytes {
        return Err(format!(
            "{} bytes exceeds the limit of {} bytes",
            begin.total_len, cfg.max_snapshot_bytes
        ));
    }
    let mut received = 0u64;
    loop {
        let frame =
            read_frame(reader, cfg.max_snapshot_chunk_bytes as u32).map_err(|e| e.to_string())?;
        match frame.kind {
            FrameKind::SnapshotChunk => {
                if received + frame.payload.len() as u64 > begin.total_len {
                    return Err(format!(
                        "chunks exceed the announced {} bytes",
                        begin.total_len
                    ));
                }
                received += frame.payload.len() as u64;
                sink(&frame.payload)?;
            }
            FrameKind::SnapshotEnd => return Ok(received),
            other => return Err(format!("unexpected {other:?} frame inside a snapshot")),
        }
    }
}

/// Checks the received length and CRC against the header.
fn check_whole(begin: &SnapshotBegin, received: u64, crc: u32) -> Result<(), String> {
    if received != begin.total_len {
        return Err(format!(
            "truncated: {received} of {} bytes",
            begin.total_len
        ));
    }
    if crc != begin.crc {
        return Err(format!(
            "crc mismatch (announced {:#010x}, computed {crc:#010x})",
            begin.crc
        ));
    }
    Ok(())
}

/// Reads chunks up to the end marker into memory and verifies length and CRC.
fn receive_one(
    core: &Core,
    reader: &mut BufReader<TcpStream>,
    begin: SnapshotBegin,
) -> Result<Vec<u8>, String> {
    // Do not trust the declared size for the up-front allocation.
    let mut data = Vec::with_capacity(begin.total_len.min(64 << 20) as usize);
    let received = receive_chunks(core, reader, &begin, |chunk| {
        data.extend_from_slice(chunk);
        Ok(())
    })?;
    check_whole(&begin, received, crc32fast::hash(&data))?;
    Ok(data)
}
