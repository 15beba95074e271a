package httpx

import (
	"context"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

// TestWithDeadline checks that the lazily armed context ends as
// context.WithDeadline would, whether or not anything waited on it.
func TestWithDeadline(t *testing.T) {
	far := time.Now().Add(time.Hour)
	type testCase struct {
		name      string
		wait      bool // ask for Done before the event
		viaParent bool // the parent is canceled, rather than the context released
	}
	var cases []testCase
	for _, viaParent := range []bool{false, true} {
		for _, wait := range []bool{false, true} {
			name := map[bool]string{false: "released", true: "parent canceled"}[viaParent] +
				map[bool]string{false: ", unarmed", true: ", armed"}[wait]
			cases = append(cases, testCase{name, wait, viaParent})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
			defer cancelParent()
			ctx, release := withDeadline(parent, far)
			defer release()
			if d, ok := ctx.Deadline(); !ok || !d.Equal(far) {
				t.Errorf("Deadline() = %v, %v; want %v, true", d, ok, far)
			}
			if v := ctx.Value(ctxKey{}); v != "v" {
				t.Errorf("Value = %v, want the parent's", v)
			}
			if err := ctx.Err(); err != nil {
				t.Fatalf("Err() = %v before anything ended it", err)
			}
			var done <-chan struct{}
			if tc.wait {
				done = ctx.Done()
				select {
				case <-done:
					t.Fatal("Done closed before anything ended it")
				default:
				}
			}
			if tc.viaParent {
				cancelParent()
			} else {
				release()
			}
			if done == nil {
				done = ctx.Done()
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Done did not close")
			}
			if err := ctx.Err(); err != context.Canceled {
				t.Errorf("Err() = %v, want Canceled", err)
			}
			if v := ctx.Value(ctxKey{}); v != "v" {
				t.Errorf("after the end, Value = %v, want the parent's", v)
			}
		})
	}
}

// TestWithDeadlineExpires checks the deadline both when something waits
// (the timer fires) and when nothing does (Err sees it).
func TestWithDeadlineExpires(t *testing.T) {
	for _, wait := range []bool{true, false} {
		ctx, release := withDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
		if wait {
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Done did not close at the deadline")
			}
		} else {
			time.Sleep(30 * time.Millisecond)
		}
		if err := ctx.Err(); err != context.DeadlineExceeded {
			t.Errorf("waited %v: Err() = %v, want DeadlineExceeded", wait, err)
		}
		select {
		case <-ctx.Done():
		default:
			t.Errorf("waited %v: Done is open after the deadline", wait)
		}
		// Ending it again changes nothing.
		release()
		if err := ctx.Err(); err != context.DeadlineExceeded {
			t.Errorf("waited %v: after release, Err() = %v, want DeadlineExceeded still", wait, err)
		}
	}
}

// TestWithDeadlineParentEarlier checks that a parent's earlier deadline
// wins, as with context.WithDeadline.
func TestWithDeadlineParentEarlier(t *testing.T) {
	early := time.Now().Add(time.Minute)
	parent, cancel := context.WithDeadline(context.Background(), early)
	defer cancel()
	ctx, release := withDeadline(parent, early.Add(time.Hour))
	defer release()
	if d, _ := ctx.Deadline(); !d.Equal(early) {
		t.Errorf("Deadline() = %v, want the parent's %v", d, early)
	}
}

// TestWithDeadlineChildren checks that contexts derived from it end with
// it, and that its error does not change once it ended.
func TestWithDeadlineChildren(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, release := withDeadline(parent, time.Now().Add(time.Hour))
	child, cancelChild := context.WithCancel(context.WithValue(ctx, ctxKey{}, "child"))
	defer cancelChild()
	ran := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ran) })
	release()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a derived context did not end with it")
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("an AfterFunc did not run when it ended")
	}
	cancelParent()
	if err := ctx.Err(); err != context.Canceled {
		t.Errorf("Err() = %v, want Canceled", err)
	}
	if c := context.Cause(child); c != context.Canceled {
		t.Errorf("Cause(child) = %v, want Canceled", c)
	}
}

// TestWithDeadlineConcurrent runs waiters, pollers and the release at once
// (for the race detector).
func TestWithDeadlineConcurrent(t *testing.T) {
	for range 50 {
		ctx, release := withDeadline(context.Background(), time.Now().Add(time.Hour))
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if i%2 == 0 {
					<-ctx.Done()
				} else {
					for ctx.Err() == nil {
						time.Sleep(time.Microsecond)
					}
				}
			})
		}
		wg.Go(release)
		wg.Wait()
		if err := ctx.Err(); err != context.Canceled {
			t.Fatalf("Err() = %v, want Canceled", err)
		}
	}
}

func BenchmarkRequestDeadline(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("context.WithTimeout", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, release := context.WithTimeout(parent, DefaultTimeout)
				release()
			}
		})
	})
	b.Run("withDeadline", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, release := withDeadline(parent, time.Now().Add(DefaultTimeout))
				release()
			}
		})
	})
}
