//! A criterion measurement of the benchmarking thread's own CPU time (user + system, ns),
//! from `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, read once per batch of iterations.
//!
//! Wall-clock figures on a shared 2-core machine swing with whatever else runs; CPU time
//! answers "how many per second does one core do" without counting the time the thread
//! spent waiting for a core. It is wrong for anything that waits on I/O (fsync), so the
//! durable-append benchmarks use wall time only. Linux (64-bit) only; elsewhere the
//! CPU-time groups are skipped.

use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};

pub struct CpuTime;

impl CpuTime {
    /// Whether this platform exposes per-thread CPU time the way `now` reads it.
    pub fn available() -> bool {
        read().is_some()
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn read() -> Option<u64> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    unsafe extern "C" {
        // From the C library std already links.
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec with the 64-bit Linux layout.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn read() -> Option<u64> {
    None
}

fn now() -> u64 {
    read().unwrap_or_else(|| panic!("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed"))
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        now()
    }

    fn end(&self, started: u64) -> u64 {
        now().saturating_sub(started)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if ns < 1e3 {
            (1.0, "ns cpu")
        } else if ns < 1e6 {
            (1e-3, "µs cpu")
        } else if ns < 1e9 {
            (1e-6, "ms cpu")
        } else {
            (1e-9, "s cpu")
        };
        for v in values {
            *v *= factor;
        }
        unit
    }

    fn scale_throughputs(
        &self,
        typical_ns: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iter = match *throughput {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => n,
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => n,
            Throughput::Bits(n) => n,
        } as f64;
        let per_second = per_iter * 1e9 / typical_ns;
        let (factor, unit) = if per_second < 1e3 {
            (1.0, "elem/cpu-s")
        } else if per_second < 1e6 {
            (1e-3, "Kelem/cpu-s")
        } else {
            (1e-6, "Melem/cpu-s")
        };
        for v in values {
            *v = per_iter * 1e9 / *v * factor;
        }
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
