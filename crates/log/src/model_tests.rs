//! Model-based property test of the whole engine: random appends, reads, flushes, checkpoints, clean restarts and
//! crashes (with torn or corrupted unflushed tails), checked against a plain list of the batches written.
//!
//! Method: the model keeps every batch as stored and how many of them were flushed. A crash drops the
//! `LogManager` without shutdown (the page cache keeps every write, as after a process crash), then damages the last
//! segment somewhere after the flushed data: a cut at a random byte or one flipped byte. After reopening through
//! `LogManager`, the log must hold exactly the model's batches up to the first damaged one: all flushed batches with
//! identical bytes and offsets, contiguous offsets, nothing corrupt, and appends continuing at the recovered end.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::batch::{validate_batches, BatchHeader, Compression, PARTITION_LEADER_EPOCH_POS};
use crate::testing::{append_bytes, read_all, split_batches, BatchBuilder};
use crate::{LogConfig, LogManager};

const TOPIC: &str = "model-topic";

#[derive(Debug, Clone)]
enum Damage {
    None,
    /// Cut the last segment at a byte after the flushed data.
    Truncate(prop::sample::Index),
    /// Flip one byte after the flushed data.
    Flip(prop::sample::Index, u8),
}

#[derive(Debug, Clone)]
enum Op {
    /// Batches of (records, value bytes, codec index).
    Append(Vec<(usize, usize, usize)>),
    Read(prop::sample::Index, usize),
    Flush,
    Checkpoint,
    CleanRestart,
    Crash(Damage),
}

fn arb_op() -> impl Strategy<Value = Op> {
    let batch = (1usize..6, 0usize..400, 0usize..5);
    let damage = prop_oneof![
        1 => Just(Damage::None),
        2 => any::<prop::sample::Index>().prop_map(Damage::Truncate),
        2 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, b)| Damage::Flip(i, b)),
    ];
    prop_oneof![
        8 => proptest::collection::vec(batch, 1..4).prop_map(Op::Append),
        3 => (any::<prop::sample::Index>(), 1usize..3000).prop_map(|(i, n)| Op::Read(i, n)),
        2 => Just(Op::Flush),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::CleanRestart),
        2 => damage.prop_map(Op::Crash),
    ]
}

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

/// The batches the log should hold, as stored, and how many of them are flushed.
struct Model {
    batches: Vec<Vec<u8>>,
    flushed: usize,
    timestamp: i64,
}

impl Model {
    fn end_offset(&self) -> i64 {
        self.batches.last().map_or(0, |b| BatchHeader::parse(b).unwrap().last_offset() + 1)
    }
}

struct Harness {
    dir: PathBuf,
    config: LogConfig,
    manager: Option<LogManager>,
    model: Model,
}

impl Harness {
    fn log(&self) -> std::sync::Arc<crate::Log> {
        self.manager.as_ref().unwrap().get(TOPIC, 0).unwrap()
    }

    fn append(&mut self, specs: &[(usize, usize, usize)]) -> Result<(), TestCaseError> {
        let mut bytes = Vec::new();
        for &(records, value_bytes, codec) in specs {
            self.model.timestamp += 10;
            let mut builder = BatchBuilder::new(self.model.timestamp).compression(CODECS[codec]);
            for r in 0..records {
                let value: Vec<u8> = (0..value_bytes).map(|i| (i * 31 + r * 7) as u8).collect();
                builder = builder.record(Some(format!("key-{r}").as_bytes()), Some(&value), r as i64);
            }
            bytes.extend(builder.build());
        }
        let (info, stored) = append_bytes(&self.log(), bytes, self.model.timestamp).unwrap();
        prop_assert_eq!(info.base_offset, self.model.end_offset(), "appends continue at the log end offset");
        let mut pos = 0;
        for header in split_batches(&stored) {
            self.model.batches.push(stored[pos..pos + header.total_bytes()].to_vec());
            pos += header.total_bytes();
        }
        Ok(())
    }

    fn read(&self, pick: prop::sample::Index, max_bytes: usize) -> Result<(), TestCaseError> {
        let log = self.log();
        let end = self.model.end_offset();
        let offset = pick.index(end as usize + 1) as i64;
        let bytes = log.read(offset, max_bytes, end, true).unwrap().bytes;
        if offset == end {
            prop_assert!(bytes.is_empty());
            return Ok(());
        }
        let first =
            self.model.batches.iter().position(|b| BatchHeader::parse(b).unwrap().last_offset() >= offset).unwrap();
        let count = split_batches(&bytes).len();
        prop_assert!(count >= 1);
        prop_assert_eq!(&bytes[..], &self.model.batches[first..first + count].concat()[..]);
        prop_assert!(bytes.len() <= max_bytes || count == 1);
        Ok(())
    }

    fn reopen(&mut self, expect_clean: bool) -> Result<(), TestCaseError> {
        let manager = LogManager::open(self.dir.clone(), self.config.clone()).unwrap();
        let report = manager.startup_report();
        prop_assert_eq!(report.clean, expect_clean);
        if expect_clean {
            prop_assert_eq!(report.bytes_scanned, 0);
        }
        self.manager = Some(manager);
        let log = self.log();
        prop_assert_eq!(log.log_end_offset(), self.model.end_offset());
        let all = read_all(&log, 0).unwrap();
        prop_assert_eq!(&all, &self.model.batches.concat());
        if !all.is_empty() {
            // Nothing corrupt is ever served.
            validate_batches(&all, usize::MAX).unwrap();
        }
        // Opening made everything durable (clean shutdown flushed it, or recovery fsynced the tail).
        prop_assert_eq!(log.flushed_offset(), log.log_end_offset());
        self.model.flushed = self.model.batches.len();
        Ok(())
    }

    /// Drops the manager without shutdown, damages the unflushed tail, and returns how many batches must survive.
    fn crash(&mut self, damage: &Damage) -> Result<(), TestCaseError> {
        // The log may have flushed more than asked (a checkpoint flushes rolled segments); what it reports flushed
        // is what must survive, so damage goes after that.
        let flushed_offset = self.log().flushed_offset();
        let flushed = self
            .model
            .batches
            .iter()
            .take_while(|b| BatchHeader::parse(b).unwrap().last_offset() < flushed_offset)
            .count();
        prop_assert!(flushed >= self.model.flushed, "the flushed offset never goes back");
        self.model.flushed = flushed;
        drop(self.manager.take());
        let (path, base) = last_segment(&self.dir.join(format!("{TOPIC}-0")));
        // Batches in the last segment, with their positions in it.
        let mut in_segment = Vec::new();
        let mut pos = 0u64;
        for (i, batch) in self.model.batches.iter().enumerate() {
            if BatchHeader::parse(batch).unwrap().base_offset >= base {
                in_segment.push((i, pos));
                pos += batch.len() as u64;
            }
        }
        let flushed_pos = in_segment.iter().find(|(i, _)| *i >= self.model.flushed).map_or(pos, |(_, p)| *p);
        let file = std::fs::OpenOptions::new().write(true).read(true).open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        prop_assert_eq!(len, pos, "the last segment holds the model's batches");
        let target = match damage {
            Damage::None => None,
            _ if len == flushed_pos => None,
            Damage::Truncate(i) => Some(flushed_pos + i.index((len - flushed_pos) as usize) as u64),
            Damage::Flip(i, _) => Some(flushed_pos + i.index((len - flushed_pos) as usize) as u64),
        };
        let Some(mut at) = target else { return self.reopen(false) };
        let (victim, start) = *in_segment.iter().rev().find(|(_, p)| *p <= at).unwrap();
        match damage {
            Damage::Truncate(_) => file.set_len(at).unwrap(),
            Damage::Flip(_, mask) => {
                // The leader epoch is outside the CRC (the broker rewrites it); flip the magic byte instead.
                let epoch = start + PARTITION_LEADER_EPOCH_POS as u64;
                if (epoch..epoch + 4).contains(&at) {
                    at = epoch + 4;
                }
                let mut byte = [0u8];
                file.read_exact_at(&mut byte, at).unwrap();
                file.write_all_at(&[byte[0] ^ mask], at).unwrap();
            }
            Damage::None => unreachable!(),
        }
        prop_assert!(victim >= self.model.flushed, "damage stays after the flushed data");
        self.model.batches.truncate(victim);
        self.reopen(false)
    }
}

fn last_segment(dir: &Path) -> (PathBuf, i64) {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log").map(|stem| stem.parse().unwrap())
        })
        .collect();
    bases.sort_unstable();
    let base = *bases.last().unwrap();
    (dir.join(format!("{base:020}.log")), base)
}

fn run(ops: Vec<Op>, segment_bytes: u64, index_interval_bytes: u32) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes, index_interval_bytes, ..LogConfig::default() };
    let manager = LogManager::open(root.path().to_path_buf(), config.clone()).unwrap();
    manager.get_or_create(TOPIC, 0, config.clone()).unwrap();
    let mut h = Harness {
        dir: root.path().to_path_buf(),
        config,
        manager: Some(manager),
        model: Model { batches: Vec::new(), flushed: 0, timestamp: 1_000_000 },
    };
    for op in &ops {
        match op {
            Op::Append(specs) => h.append(specs)?,
            Op::Read(pick, max_bytes) => h.read(*pick, *max_bytes)?,
            Op::Flush => {
                h.log().flush().unwrap();
                h.model.flushed = h.model.batches.len();
            }
            Op::Checkpoint => h.manager.as_ref().unwrap().checkpoint().unwrap(),
            Op::CleanRestart => {
                h.manager.take().unwrap().shutdown().unwrap();
                h.reopen(true)?;
            }
            Op::Crash(damage) => h.crash(damage)?,
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn model_append_read_reopen_recover(
        ops in proptest::collection::vec(arb_op(), 1..40),
        segment_bytes in 500u64..4000,
        index_interval_bytes in 1u32..600,
    ) {
        run(ops, segment_bytes, index_interval_bytes)?;
    }
}
