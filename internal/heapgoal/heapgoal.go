// Package heapgoal keeps the garbage collector's heap goal at least a
// headroom above the live heap.
//
// Go starts the next collection when the heap has grown by GOGC percent
// of what the last one found live. customerkey's live heap is small (a few
// MiB: caches of parsed keys and tokens), while every request allocates
// its buffers and parsed headers, so at the default the server collects
// every few milliseconds under load and spends a sixth of its CPU on it
// (docs/performance.md). Keep raises GOGC after each collection so that
// the goal is the live heap plus the headroom, and lowers it again as the
// live heap grows, down to the percentage in force when it started: a
// large live heap is collected exactly as Go would. A memory limit
// (GOMEMLIMIT) still bounds the heap either way.
package heapgoal

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// keeping is set while a keeper runs: GOGC is one per process, so a second
// Keep would take the first one's raised GOGC for its base.
var keeping atomic.Bool

// minHeap is the runtime's smallest heap goal at GOGC=100; it scales with
// GOGC (4 MiB × GOGC/100), so a high GOGC raises it too.
const minHeap = 4 << 20

// percent is the GOGC value that puts the heap goal headroom bytes above
// live, and never below base. The runtime's goal is the larger of
// live × (1 + GOGC/100) and minHeap × GOGC/100; both stay within live +
// headroom.
func percent(live, headroom uint64, base int) int {
	p := (live + headroom) * 100 / minHeap
	if live > 0 {
		p = min(p, headroom*100/live)
	}
	return max(base, int(min(p, 1<<30)))
}

// keeper adjusts GOGC after every collection until stopped.
type keeper struct {
	headroom uint64
	base     int

	mu      sync.Mutex
	stopped bool
	current int
	sample  []metrics.Sample
}

// cycle is allocated once per collection; its cleanup runs when a
// collection has found it unreachable. The pointer keeps it out of the
// tiny allocator, whose blocks would delay that.
type cycle struct{ _ *keeper }

// Keep starts keeping the heap goal headroom bytes above the live heap.
// It returns how the collector is paced, for logs and reports, and the
// function that stops keeping and restores GOGC. It leaves GOGC alone when
// the environment sets it (the operator's choice wins), when headroom is
// 0, when the collector is off, and while another Keep of this process runs.
func Keep(headroom uint64) (pacing string, stop func()) {
	nop := func() {}
	if g := os.Getenv("GOGC"); g != "" {
		return "GOGC=" + g + " from the environment", nop
	}
	if headroom == 0 {
		return "Go's default", nop
	}
	if !keeping.CompareAndSwap(false, true) {
		return "heap headroom kept by another caller", nop
	}
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	base := -1
	if s[0].Value.Kind() == metrics.KindUint64 {
		base = int(s[0].Value.Uint64()) // GOGC=off reads as -1
	}
	if base <= 0 {
		keeping.Store(false)
		return "off", nop
	}
	k := &keeper{headroom: headroom, base: base, current: base, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	k.collected()
	return fmt.Sprintf("heap headroom %d MiB", headroom>>20), k.stop
}

// collected sets GOGC for the live heap of the last collection and waits
// for the next one.
func (k *keeper) collected() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	metrics.Read(k.sample)
	var live uint64
	if k.sample[0].Value.Kind() == metrics.KindUint64 {
		live = k.sample[0].Value.Uint64()
	}
	// A change within an eighth is not worth a new goal, unless it goes
	// back to the base.
	if p := percent(live, k.headroom, k.base); p != k.current && (p == k.base || abs(p-k.current) > k.current/8) {
		debug.SetGCPercent(p)
		k.current = p
	}
	runtime.AddCleanup(&cycle{}, (*keeper).collected, k)
}

func abs(n int) int { return max(n, -n) }

func (k *keeper) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.stopped {
		k.stopped = true
		debug.SetGCPercent(k.base)
		keeping.Store(false)
	}
}
