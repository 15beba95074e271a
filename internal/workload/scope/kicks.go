package scope

import (
	"slices"
	"sync"

	"github.com/customerkey/customerkey/internal/directory"
)

// Kicks is the set of tenants whose scope keys a workload's background job
// should rewrap now, with a wake-up for the job. It is safe for concurrent
// use.
type Kicks struct {
	limit   int
	mu      sync.Mutex
	tenants map[string]bool
	wake    chan struct{} // capacity 1: a pending wake-up
}

// NewKicks returns an empty set that holds at most limit tenants (no bound
// when limit is zero); beyond it a kick is dropped, for a periodic sweep to
// catch up.
func NewKicks(limit int) *Kicks {
	return &Kicks{limit: limit, tenants: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Add puts tenantID in the set and wakes the job. It never blocks; kicks of
// one tenant that arrive while the job is busy are merged. A tenant id that
// is not a GUID is ignored.
func (k *Kicks) Add(tenantID string) {
	tid := lower(tenantID)
	if !directory.IsGUID(tid) {
		return
	}
	k.mu.Lock()
	if k.limit == 0 || len(k.tenants) < k.limit {
		k.tenants[tid] = true
	}
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Wake receives when tenants were added since the last Take.
func (k *Kicks) Wake() <-chan struct{} { return k.wake }

// Take empties the set and returns its tenants, sorted.
func (k *Kicks) Take() []string {
	k.mu.Lock()
	tenants := make([]string, 0, len(k.tenants))
	for tid := range k.tenants {
		tenants = append(tenants, tid)
	}
	clear(k.tenants)
	k.mu.Unlock()
	slices.Sort(tenants)
	return tenants
}
