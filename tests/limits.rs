//! Every corner of DESIGN.md section 4's ranges builds its programs or is refused before
//! anything is allocated, fast and within a stated memory budget for the op lists (evaluation
//! and the probe are loops over chunks, never unrolled per batch).

use mhc_playground::config::{Config, ResidualKind};
use mhc_playground::kernels::Op;
use mhc_playground::plan::ARENA_ADDRESS_LIMIT;
use mhc_playground::program::{OpList, Program};
use mhc_playground::tasks::Dataset;
use std::time::Instant;

/// Most ops any one list may hold at any corner, and the most memory all lists of a variant
/// may take (the ops themselves; each becomes one uniform slot of 256 bytes on the GPU).
const MAX_OPS_PER_LIST: usize = 16_384;
const MAX_LIST_BYTES: usize = 16 << 20;

#[test]
fn every_corner_builds_or_is_refused_within_a_second_and_the_list_budget() {
    let mut built = 0;
    let mut refused = 0;
    let mut largest = (0usize, String::new());
    let mut largest_arena = (0u64, String::new());
    for task in ["task=spiral", "task=teacher", "task=modadd&p=257"] {
        for depth in [1, 256] {
            for width in [4, 1024] {
                for streams in [1, 8] {
                    for ffn in [1, 8] {
                        for batch in [1, 4096] {
                            let query = format!("{task}&depth={depth}&width={width}&streams={streams}&ffn={ffn}&batch={batch}");
                            let (config, notices) = Config::from_query(&query);
                            assert!(notices.is_empty(), "{query}: {notices:?}");
                            let n_test = Dataset::new(&config).n_test();
                            for kind in ResidualKind::ALL {
                                let start = Instant::now();
                                let outcome = Program::new(&config, kind, n_test);
                                let seconds = start.elapsed().as_secs_f64();
                                assert!(seconds < 1.0, "{query} {kind:?}: {seconds:.2} s to build or refuse");
                                let program = match outcome {
                                    Ok(program) => program,
                                    Err(too_large) => {
                                        assert!(too_large.needed_mib * 1048576.0 > ARENA_ADDRESS_LIMIT as f64, "{query}: {too_large}");
                                        refused += 1;
                                        continue;
                                    }
                                };
                                built += 1;
                                let ops: usize = OpList::ALL.iter().map(|&list| program.list(list).len()).sum();
                                for list in OpList::ALL {
                                    let len = program.list(list).len();
                                    assert!(len <= MAX_OPS_PER_LIST, "{query} {kind:?}: {list:?} has {len} ops");
                                }
                                assert!(ops * std::mem::size_of::<Op>() <= MAX_LIST_BYTES, "{query} {kind:?}: {ops} ops");
                                assert!(program.arena_bytes() <= ARENA_ADDRESS_LIMIT, "{query} {kind:?}");
                                if ops > largest.0 {
                                    largest = (ops, format!("{query} {kind:?}"));
                                }
                                if program.arena_bytes() > largest_arena.0 {
                                    largest_arena = (program.arena_bytes(), format!("{query} {kind:?}"));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    println!(
        "{built} programs built, {refused} refused; most ops {} ({}, {} KiB of ops), largest arena {:.0} MiB ({})",
        largest.0,
        largest.1,
        largest.0 * std::mem::size_of::<Op>() / 1024,
        largest_arena.0 as f64 / 1048576.0,
        largest_arena.1
    );
    assert!(built > 0 && refused > 0, "the corners include both");
}
