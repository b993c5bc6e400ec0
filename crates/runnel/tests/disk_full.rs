//! A full disk: produce gets KAFKA_STORAGE_ERROR, reads keep working, nothing
//! written before is damaged, and writes resume on their own once space is
//! freed. The data directory lives on a small tmpfs the test mounts itself
//! (the test needs root, which the development machines and CI have; where
//! mounting is not permitted it says so and does nothing).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{read_partition, watermarks, BrokerProcess};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// A tmpfs mounted for the test, unmounted on drop.
struct SmallDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).unwrap();
        let status =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&mount).status();
        match status {
            Ok(s) if s.success() => Some(SmallDisk { mount, _dir: dir }),
            _ => None,
        }
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if !Command::new("umount").arg(&self.mount).status().is_ok_and(|s| s.success()) {
            eprintln!("could not unmount {}", self.mount.display());
        }
    }
}

async fn send(producer: &FutureProducer, value: &[u8]) -> Result<i64, String> {
    producer
        .send(FutureRecord::<(), _>::to("full").payload(value), Duration::from_secs(10))
        .await
        .map(|d| d.offset)
        .map_err(|(e, _)| e.to_string())
}

/// Goal: disk full is an error clients retry, not damage. Method: on an 8 MiB
/// tmpfs, a 2 MiB filler file and the broker's data; produce 64 KiB records
/// until one fails (librdkafka retries KAFKA_STORAGE_ERROR until its 3 s
/// message timeout); check the broker logged the full disk, every
/// acknowledged record reads back intact, and nothing past them is visible;
/// delete the filler and produce again: the next record lands right after the
/// last acknowledged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_writes_and_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount("8m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let mut broker = BrokerProcess::start(&disk.path().join("data"), &[]);
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![0u8; 2 << 20]).unwrap();

    let producer = broker.producer(&[("message.timeout.ms", "3000"), ("linger.ms", "0")]);
    let record = |i: usize| vec![(i % 251) as u8; 64 * 1024];
    let mut acknowledged = 0usize;
    let refused = loop {
        match send(&producer, &record(acknowledged)).await {
            Ok(offset) => {
                assert_eq!(offset, acknowledged as i64);
                acknowledged += 1;
                assert!(acknowledged < 200, "an 8 MiB disk must fill up");
            }
            Err(e) => break e,
        }
    };
    assert!(acknowledged > 10, "some records fit before the disk filled: {acknowledged}");
    assert!(broker.logs().contains("disk full"), "the broker says why: {refused}");

    let consumer = broker.consumer(&[("fetch.max.bytes", "1048576")]);
    assert_eq!(watermarks(&consumer, "full", 0).1, acknowledged as i64, "nothing past the acknowledged records");
    let records = read_partition(&consumer, "full", 0, 0, acknowledged, Duration::from_secs(30));
    assert_eq!(records.len(), acknowledged);
    for (i, (offset, _, value)) in records.iter().enumerate() {
        assert_eq!(*offset, i as i64);
        assert_eq!(value.as_deref(), Some(&record(i)[..]), "record {i} intact");
    }

    std::fs::remove_file(&filler).unwrap();
    let offset = send(&producer, b"after space returned").await.expect("writes resume once space is freed");
    assert_eq!(offset, acknowledged as i64, "no gap and no duplicate");
    drop((producer, consumer));
    assert_eq!(broker.terminate(), Some(0));
}
