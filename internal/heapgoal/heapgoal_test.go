package heapgoal

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentage(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name     string
		live     uint64
		headroom uint64
		base     int
		want     int
	}{
		{"small live heap gets the headroom", 4 * mib, 64 * mib, 100, 1600},
		{"live heap as large as the headroom: base", 64 * mib, 64 * mib, 100, 100},
		{"live heap larger than the headroom: base", 512 * mib, 64 * mib, 100, 100},
		{"a higher base wins", 16 * mib, 64 * mib, 500, 500},
		{"nothing live: the minimum heap is the headroom", 0, 64 * mib, 100, 1600},
		{"less live than the minimum heap: bounded by it", 2 * mib, 64 * mib, 100, 1650},
		{"a few bytes live", 10, 64 * mib, 100, 1600},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := percent(c.live, c.headroom, c.base); got != c.want {
				t.Errorf("percent(%d, %d, %d) = %d, want %d", c.live, c.headroom, c.base, got, c.want)
			}
		})
	}
}

func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// gcUntil collects until cond holds (the cleanup that adjusts GOGC runs
// on its own goroutine after a collection), or fails after a few seconds.
func gcUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: GOGC is %d, heap goal %d, live %d", what, read("/gc/gogc:percent"), read("/gc/heap/goal:bytes"), read("/gc/heap/live:bytes"))
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

var keepAlive []byte

// TestKeep follows the goal as the live heap grows past the headroom and
// shrinks again, and checks that stop restores GOGC.
func TestKeep(t *testing.T) {
	t.Setenv("GOGC", "") // the environment would win over Keep
	const headroom = 32 << 20
	base := int(read("/gc/gogc:percent"))
	_, stop := Keep(headroom)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	// The goal is live + headroom, within the eighth Keep tolerates.
	goalNear := func() bool {
		goal, live := read("/gc/heap/goal:bytes"), read("/gc/heap/live:bytes")
		return goal >= live+headroom*7/8 && goal <= live+headroom*9/8
	}
	if goal, live := read("/gc/heap/goal:bytes"), read("/gc/heap/live:bytes"); goal > live+headroom*9/8 {
		t.Fatalf("right after Keep the heap goal is %d with %d live, want at most live + headroom", goal, live)
	}
	gcUntil(t, "small live heap", goalNear)
	if p := int(read("/gc/gogc:percent")); p <= base {
		t.Fatalf("GOGC %d, want above %d with a small live heap", p, base)
	}

	keepAlive = make([]byte, 4*headroom)
	for i := range keepAlive {
		keepAlive[i] = byte(i)
	}
	gcUntil(t, "live heap four times the headroom", func() bool { return int(read("/gc/gogc:percent")) == base })

	keepAlive = nil
	gcUntil(t, "live heap small again", goalNear)

	stop()
	stopped = true
	if p := int(read("/gc/gogc:percent")); p != base {
		t.Fatalf("after stop GOGC is %d, want %d", p, base)
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if p := int(read("/gc/gogc:percent")); p != base {
		t.Fatalf("a collection after stop changed GOGC to %d", p)
	}
}

func TestKeepOffWithoutHeadroom(t *testing.T) {
	t.Setenv("GOGC", "") // the environment would win over Keep
	base := read("/gc/gogc:percent")
	_, stop := Keep(0)
	defer stop()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if p := read("/gc/gogc:percent"); p != base {
		t.Fatalf("Keep(0) changed GOGC from %d to %d", base, p)
	}
}

// TestKeepOncePerProcess: GOGC is one per process; a second Keep while the
// first runs must not take the raised GOGC for its base and leave it set.
func TestKeepOncePerProcess(t *testing.T) {
	t.Setenv("GOGC", "") // the environment would win over Keep
	base := int(read("/gc/gogc:percent"))
	_, stop1 := Keep(32 << 20)
	gcUntil(t, "first Keep", func() bool { return int(read("/gc/gogc:percent")) > base })
	_, stop2 := Keep(32 << 20)
	stop1()
	stop2()
	if p := int(read("/gc/gogc:percent")); p != base {
		t.Fatalf("after both stopped GOGC is %d, want %d", p, base)
	}
	_, stop3 := Keep(32 << 20)
	defer stop3()
	gcUntil(t, "Keep after the first stopped", func() bool { return int(read("/gc/gogc:percent")) > base })
}

func TestKeepLeavesTheCollectorOff(t *testing.T) {
	t.Setenv("GOGC", "") // the environment would win over Keep
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	_, stop := Keep(32 << 20)
	defer stop()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if p := int(read("/gc/gogc:percent")); p != -1 {
		t.Fatalf("with GOGC=off, Keep set GOGC to %d", p)
	}
}

// TestKeepPacing: what Keep reports is what it did, and GOGC in the
// environment wins over any headroom.
func TestKeepPacing(t *testing.T) {
	base := int(read("/gc/gogc:percent"))
	for _, tc := range []struct {
		name, env string
		headroom  uint64
		want      string
		keeps     bool
	}{
		{"headroom", "", 32 << 20, "heap headroom 32 MiB", true},
		{"no headroom", "", 0, "Go's default", false},
		{"GOGC in the environment", "150", 32 << 20, "GOGC=150 from the environment", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.env)
			pacing, stop := Keep(tc.headroom)
			defer stop()
			if pacing != tc.want {
				t.Errorf("pacing %q, want %q", pacing, tc.want)
			}
			if tc.keeps {
				gcUntil(t, tc.name, func() bool { return int(read("/gc/gogc:percent")) > base })
				return
			}
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
			if p := int(read("/gc/gogc:percent")); p != base {
				t.Errorf("GOGC changed from %d to %d", base, p)
			}
		})
	}
}
