package identity

import (
	"strings"
	"sync"
	"time"
)

// throttle counts failed sign-ins per key in fixed windows: the first
// failure opens a window; once it holds limit failures, every attempt is
// refused until the window ends, without checking the credential, so that
// guessing costs the attacker time rather than the server work.
//
// The counters live in memory, per process. That is documented and
// accepted: with N nodes an attacker gets at most N times the budget, and
// a restart forgets them, which errs on the side of availability.
type throttle struct {
	limit  int
	window time.Duration
	max    int

	mu sync.Mutex
	m  map[string]*throttleWindow
}

type throttleWindow struct {
	start    time.Time
	failures int
}

func newThrottle(limit int, window time.Duration, max int) *throttle {
	return &throttle{limit: limit, window: window, max: max, m: make(map[string]*throttleWindow)}
}

// Throttle keys: the kind of counter, then its parts, joined with a
// separator that cannot appear in a tenant id, a client id or an address.
func clientKey(tid, clientID string) string {
	return "c\x00" + tid + "\x00" + strings.ToLower(clientID)
}
func userKey(tid, upn string) string { return "u\x00" + tid + "\x00" + strings.ToLower(upn) }
func ipKey(ip string) string         { return "i\x00" + ip }

// check returns how long the caller must wait when any of keys is locked.
// Empty keys are ignored.
func (t *throttle) check(now time.Time, keys ...string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if k == "" || strings.HasSuffix(k, "\x00") {
			continue
		}
		w, ok := t.m[k]
		if !ok {
			continue
		}
		end := w.start.Add(t.window)
		if !now.Before(end) {
			delete(t.m, k)
			continue
		}
		if w.failures >= t.limit && end.Sub(now) > wait {
			wait = end.Sub(now)
		}
	}
	return wait, wait > 0
}

// fail counts one failure against each key.
func (t *throttle) fail(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if k == "" || strings.HasSuffix(k, "\x00") {
			continue
		}
		w, ok := t.m[k]
		if ok && !now.Before(w.start.Add(t.window)) {
			ok = false
		}
		if !ok {
			if len(t.m) >= t.max {
				t.sweep(now)
			}
			if len(t.m) >= t.max {
				// Still full of live windows: refuse to grow. The address
				// counter of a flood is usually among the live ones.
				continue
			}
			w = &throttleWindow{start: now}
			t.m[k] = w
		}
		w.failures++
	}
}

func (t *throttle) sweep(now time.Time) {
	for k, w := range t.m {
		if !now.Before(w.start.Add(t.window)) {
			delete(t.m, k)
		}
	}
}
