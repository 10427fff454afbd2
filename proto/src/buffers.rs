//! Large byte buffers kept for reuse: chunk bodies the filer assembles and whole needles
//! the volume server reads. A buffer of a megabyte or more handed back to the allocator
//! goes back to the kernel, and the next one costs a page fault and a zero-fill per
//! page (on a virtual machine, often a fault in the host too): under a stream of 8 MiB
//! GETs that cost more than reading the bytes. Here such buffers return to a pool when
//! the last [`Bytes`] over them is dropped: at most [`RETAINED`] bytes of them, each
//! freed by a trimming thread once idle for [`IDLE_FOR`].

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Buffers smaller than this are left to the allocator.
pub const MIN_POOLED: usize = 1 << 20;
/// A pooled buffer has up to this much more room than asked: one buffer then serves
/// requests of a few sizes (an 8 MiB chunk, the same chunk read back with room to
/// align it for a direct read), and a new one is made this much larger.
pub const SLACK: usize = 64 << 10;
/// The most memory the pool keeps idle: the buffers of 16 concurrent 16 MiB PUTs and
/// GETs in 8 MiB chunks fit. Past it the oldest idle buffers are freed.
pub const RETAINED: usize = 512 << 20;
/// An idle buffer not asked for in this long is freed by the trimming thread (which
/// looks every as long, so within twice this).
pub const IDLE_FOR: Duration = Duration::from_secs(30);

/// Idle buffers, oldest first, each with when it came back; and the bytes of capacity
/// they hold.
struct Pool {
    idle: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    idle: VecDeque::new(),
    bytes: 0,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // A panic elsewhere while holding the lock leaves the pool consistent: each
    // operation under it is a push or a remove with its count.
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    /// The most recently returned idle buffer with between `capacity` and `capacity +`
    /// [`SLACK`] of room (the likeliest to be still in the CPU's caches), as it was
    /// handed back: its length is what its last user left.
    fn take(&mut self, capacity: usize) -> Option<Vec<u8>> {
        let fits = |c: usize| c >= capacity && c - capacity <= SLACK;
        let i = self.idle.iter().rposition(|(_, b)| fits(b.capacity()))?;
        let (_, b) = self.idle.remove(i)?;
        self.bytes -= b.capacity();
        Some(b)
    }

    /// Keeps `buf`, returned at `now`. Returns what to free (outside the lock): the
    /// oldest idle buffers as needed to hold at most `bound` bytes, so sizes no longer
    /// asked for leave room for the ones in use.
    fn give(&mut self, buf: Vec<u8>, now: Instant, bound: usize) -> Vec<Vec<u8>> {
        let mut freed = Vec::new();
        let cap = buf.capacity();
        if cap > bound {
            freed.push(buf);
            return freed;
        }
        while self.bytes + cap > bound {
            let Some((_, old)) = self.idle.pop_front() else {
                break;
            };
            self.bytes -= old.capacity();
            freed.push(old);
        }
        self.bytes += cap;
        self.idle.push_back((now, buf));
        freed
    }

    /// Removes the buffers idle since before `now - idle_for`.
    fn expire(&mut self, now: Instant, idle_for: Duration) -> Vec<Vec<u8>> {
        let mut freed = Vec::new();
        while let Some((at, _)) = self.idle.front()
            && now.saturating_duration_since(*at) > idle_for
        {
            if let Some((_, old)) = self.idle.pop_front() {
                self.bytes -= old.capacity();
                freed.push(old);
            }
        }
        freed
    }
}

/// An empty buffer with at least `capacity` bytes of room: an idle one, else a new
/// one. Small ones have exactly `capacity`; pooled sizes up to [`SLACK`] more, so
/// reading into all the spare capacity may read that much past what was asked. Its
/// spare capacity holds old bytes (or none): write before reading, as with any
/// `Vec::with_capacity`.
pub fn take(capacity: usize) -> Vec<u8> {
    if capacity < MIN_POOLED {
        return Vec::with_capacity(capacity);
    }
    if let Some(mut b) = pool().take(capacity) {
        b.clear();
        return b;
    }
    Vec::with_capacity(capacity + SLACK)
}

/// A buffer of exactly `len` bytes, for a caller that overwrites all of them (with
/// positioned reads into slices of it): a pooled one holds whatever its last user
/// left, so only the part beyond that is zero-filled, not the whole buffer again.
pub fn take_filled(len: usize) -> Vec<u8> {
    let mut b = if len < MIN_POOLED {
        Vec::new()
    } else {
        pool()
            .take(len)
            .unwrap_or_else(|| Vec::with_capacity(len + SLACK))
    };
    b.resize(len, 0);
    b
}

/// Hands a buffer back for reuse (or frees it, if small).
pub fn give(buf: Vec<u8>) {
    if buf.capacity() >= MIN_POOLED {
        start_trimming();
        let freed = pool().give(buf, Instant::now(), RETAINED);
        drop(freed);
    }
}

/// Starts, once, a thread that frees idle buffers every [`IDLE_FOR`], so that memory
/// kept after a burst goes back even if no large buffer is asked for again.
fn start_trimming() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("kelp-buffers".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(IDLE_FOR);
                    let freed = pool().expire(Instant::now(), IDLE_FOR);
                    drop(freed);
                }
            });
        if let Err(e) = spawned {
            // Idle buffers then stay, within the pool's bound.
            tracing::warn!(error = %e, "cannot start the buffer pool's trimming thread");
        }
    });
}

/// `buf` as shared bytes whose memory returns to the pool when the last clone (or
/// slice) of them is dropped.
pub fn share(buf: Vec<u8>) -> Bytes {
    if buf.capacity() < MIN_POOLED {
        return Bytes::from(buf);
    }
    Bytes::from_owner(Pooled(buf))
}

/// The owner of a shared pooled buffer.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool is process-wide and tests run in parallel: each test uses sizes no
    /// other test asks for, and only asserts on the buffers it handed back.
    #[test]
    fn shared_buffers_come_back_for_reuse() {
        let size = 3 * MIN_POOLED + 12_345;
        let mut b = take(size);
        assert_eq!(b.capacity(), size + SLACK);
        b.extend_from_slice(&vec![9u8; size]);
        let addr = b.as_ptr() as usize;
        let bytes = share(b);
        let part = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(&part[..], &[9u8; 10], "a slice keeps the buffer alive");
        drop(part);
        let again = take(size);
        assert_eq!(again.as_ptr() as usize, addr, "the same memory, reused");
        assert!(again.is_empty(), "handed out empty");
        give(again);
    }

    #[test]
    fn filled_buffers_have_the_asked_length_and_reuse_memory() {
        let size = 5 * MIN_POOLED + 4321;
        let mut b = take_filled(size);
        assert_eq!(b.len(), size);
        assert!(b.iter().all(|&x| x == 0), "new memory is zeroed");
        b[..3].copy_from_slice(b"old");
        let addr = b.as_ptr() as usize;
        give(b);
        let again = take_filled(size + 100);
        assert_eq!(again.as_ptr() as usize, addr, "the same memory, reused");
        assert_eq!(again.len(), size + 100);
        assert_eq!(&again[..3], b"old", "not zeroed again");
        give(again);
        assert_eq!(take_filled(10).len(), 10);
    }

    #[test]
    fn small_buffers_and_other_sizes_are_not_handed_out() {
        let small = share(vec![1u8; 100]);
        assert_eq!(&small[..], &[1u8; 100]);
        let size = 11 * MIN_POOLED + 777;
        let big = take(size);
        let addr = big.as_ptr() as usize;
        give(big);
        let other = take(size - 1);
        assert_ne!(other.as_ptr() as usize, addr, "more than SLACK too large");
        assert_eq!(other.capacity(), size - 1 + SLACK);
        let within = take(size + SLACK);
        assert_eq!(
            within.as_ptr() as usize,
            addr,
            "a request up to SLACK larger fits"
        );
    }

    #[test]
    fn a_pool_keeps_at_most_its_bound_and_the_newest_buffers() {
        let mut p = Pool {
            idle: VecDeque::new(),
            bytes: 0,
        };
        let (now, bound) = (Instant::now(), 3 * MIN_POOLED);
        for _ in 0..5 {
            p.give(Vec::with_capacity(MIN_POOLED), now, bound);
        }
        assert_eq!((p.idle.len(), p.bytes), (3, 3 * MIN_POOLED));
        assert!(p.take(MIN_POOLED).is_some());
        assert_eq!(p.bytes, 2 * MIN_POOLED);
        assert!(p.take(2 * MIN_POOLED).is_none(), "none of that size");
        // A new size pushes out the oldest buffers, not itself.
        let freed = p.give(Vec::with_capacity(2 * MIN_POOLED), now, bound);
        assert_eq!(freed.len(), 1);
        assert_eq!((p.idle.len(), p.bytes), (2, 3 * MIN_POOLED));
        assert!(p.take(2 * MIN_POOLED).is_some());
        let freed = p.give(Vec::with_capacity(4 * MIN_POOLED), now, bound);
        assert_eq!(freed.len(), 1, "larger than the bound: freed");
        assert_eq!(p.bytes, MIN_POOLED);
    }

    #[test]
    fn buffers_idle_too_long_are_freed() {
        let mut p = Pool {
            idle: VecDeque::new(),
            bytes: 0,
        };
        let t0 = Instant::now();
        let (bound, idle) = (64 * MIN_POOLED, Duration::from_secs(30));
        p.give(Vec::with_capacity(MIN_POOLED), t0, bound);
        p.give(
            Vec::with_capacity(MIN_POOLED),
            t0 + Duration::from_secs(20),
            bound,
        );
        assert!(p.expire(t0 + Duration::from_secs(30), idle).is_empty());
        let freed = p.expire(t0 + Duration::from_secs(31), idle);
        assert_eq!((freed.len(), p.idle.len(), p.bytes), (1, 1, MIN_POOLED));
        let freed = p.expire(t0 + Duration::from_secs(60), idle);
        assert_eq!((freed.len(), p.idle.len(), p.bytes), (1, 0, 0));
    }
}
