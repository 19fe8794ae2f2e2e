//! Where a change-feed reader stands in one shard, and how a read moves it.
//!
//! The arithmetic every reader of a shard shares, free of I/O: after a read and
//! its relay report, the checkpoint moves to the last record handled — past the
//! whole read, or to just before the first record the relay could not handle, in
//! which case the reader must read again from the checkpoint. A reader whose
//! shard stays empty for a while re-reads from the checkpoint too, which heals
//! servers whose iterator chains go stale.

use crate::change::SequenceNumber;

/// What a reader must do after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterRead {
    /// The checkpoint moved (or the shard ended): persist it.
    pub save: bool,
    /// Drop the position and read again from the checkpoint.
    pub reread: bool,
}

/// The checkpoint of one shard and its idle reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardTracker {
    checkpoint: Option<SequenceNumber>,
    idle_reads: u32,
    idle_refresh: u32,
}

impl ShardTracker {
    /// A tracker starting at `checkpoint` (the last record handled, if any) that
    /// asks for a re-read after `idle_refresh` empty reads in a row.
    pub fn new(checkpoint: Option<SequenceNumber>, idle_refresh: u32) -> Self {
        Self {
            checkpoint,
            idle_reads: 0,
            idle_refresh: idle_refresh.max(1),
        }
    }

    /// The last record handled; `None` before the first.
    pub fn checkpoint(&self) -> Option<&SequenceNumber> {
        self.checkpoint.as_ref()
    }

    /// Records one read: `read` are the positions of the records read, in order;
    /// `retry_from` the first record the relay did not handle; `ended` whether the
    /// shard is closed and this read reached its end.
    pub fn after_read(
        &mut self,
        read: &[SequenceNumber],
        retry_from: Option<&SequenceNumber>,
        ended: bool,
    ) -> AfterRead {
        if let Some(failed) = retry_from {
            self.idle_reads = 0;
            let handled = read.iter().take_while(|p| *p < failed).last();
            let save = handled.is_some();
            if let Some(handled) = handled {
                self.checkpoint = Some(handled.clone());
            }
            return AfterRead { save, reread: true };
        }
        if read.is_empty() && !ended {
            self.idle_reads += 1;
            let reread = self.idle_reads >= self.idle_refresh;
            if reread {
                self.idle_reads = 0;
            }
            return AfterRead {
                save: false,
                reread,
            };
        }
        self.idle_reads = 0;
        if let Some(last) = read.last() {
            self.checkpoint = Some(last.clone());
        }
        AfterRead {
            save: true,
            reread: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber::new(n.to_string())
    }

    fn seqs(range: std::ops::RangeInclusive<u64>) -> Vec<SequenceNumber> {
        range.map(seq).collect()
    }

    #[test]
    fn a_fully_handled_read_moves_the_checkpoint_past_it() {
        let mut shard = ShardTracker::new(None, 3);
        let next = shard.after_read(&seqs(1..=4), None, false);
        assert_eq!(
            next,
            AfterRead {
                save: true,
                reread: false
            }
        );
        assert_eq!(shard.checkpoint(), Some(&seq(4)));
    }

    #[test]
    fn a_failed_record_stops_the_checkpoint_just_before_it_and_asks_for_a_reread() {
        let mut shard = ShardTracker::new(Some(seq(10)), 3);
        let next = shard.after_read(&seqs(11..=15), Some(&seq(13)), false);
        assert_eq!(
            next,
            AfterRead {
                save: true,
                reread: true
            }
        );
        assert_eq!(shard.checkpoint(), Some(&seq(12)));
    }

    #[test]
    fn a_failure_at_the_first_record_keeps_the_checkpoint_and_saves_nothing() {
        let mut shard = ShardTracker::new(Some(seq(10)), 3);
        let next = shard.after_read(&seqs(11..=15), Some(&seq(11)), true);
        assert_eq!(
            next,
            AfterRead {
                save: false,
                reread: true
            }
        );
        assert_eq!(shard.checkpoint(), Some(&seq(10)));
    }

    #[test]
    fn idle_reads_ask_for_a_reread_every_idle_refresh_reads() {
        let mut shard = ShardTracker::new(Some(seq(7)), 2);
        let idle = |shard: &mut ShardTracker| shard.after_read(&[], None, false);
        assert_eq!(
            idle(&mut shard),
            AfterRead {
                save: false,
                reread: false
            }
        );
        assert_eq!(
            idle(&mut shard),
            AfterRead {
                save: false,
                reread: true
            }
        );
        assert_eq!(
            idle(&mut shard),
            AfterRead {
                save: false,
                reread: false
            }
        );
        shard.after_read(&seqs(8..=8), None, false);
        assert_eq!(
            idle(&mut shard),
            AfterRead {
                save: false,
                reread: false
            }
        );
        assert_eq!(shard.checkpoint(), Some(&seq(8)));
    }

    #[test]
    fn an_ended_shard_is_saved_even_when_its_last_read_is_empty() {
        let mut shard = ShardTracker::new(Some(seq(7)), 2);
        let next = shard.after_read(&[], None, true);
        assert_eq!(
            next,
            AfterRead {
                save: true,
                reread: false
            }
        );
        assert_eq!(shard.checkpoint(), Some(&seq(7)));
    }

    #[test]
    fn positions_compare_as_numbers_not_text() {
        let mut shard = ShardTracker::new(None, 2);
        shard.after_read(&seqs(8..=12), Some(&seq(10)), false);
        assert_eq!(shard.checkpoint(), Some(&seq(9)));
    }
}
