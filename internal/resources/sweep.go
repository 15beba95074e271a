package resources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/customerkey/customerkey/internal/storage"
)

const sweepPage = 500

// Sweep materializes the time-driven states (subscriptions reaching
// Disabled or Deleted after a cancellation, providers and features
// finishing Registering or Unregistering) and records one audit event per
// transition, actor system. Readers derive the same states from the stored
// timestamps and the clock, so correctness never waits for Sweep; it keeps
// stored records, lists and the audit log current. The app's scheduler
// calls it periodically; a restart loses nothing.
func (s *Service) Sweep(ctx context.Context) error {
	if err := s.sweepPrefix(ctx, kSub, s.settleSubEntry); err != nil {
		return err
	}
	if err := s.sweepPrefix(ctx, kProvider, s.settleRegEntry); err != nil {
		return err
	}
	return s.sweepPrefix(ctx, kFeature, s.settleRegEntry)
}

// settleFunc reports whether the stored entry is behind the clock and, with
// tx set, settles and rewrites it.
type settleFunc func(ctx context.Context, tx storage.Tx, e storage.Entry, now time.Time) (bool, error)

func (s *Service) sweepPrefix(ctx context.Context, prefix string, settle settleFunc) error {
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var page []storage.Entry
		err := s.store.View(ctx, func(tx storage.Tx) error {
			var err error
			page, err = tx.List(prefix, after, sweepPage)
			return err
		})
		if err != nil {
			return fmt.Errorf("resources: sweeping %s: %w", prefix, err)
		}
		if len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].Key
		now := s.now()
		for _, e := range page {
			if due, err := settle(ctx, nil, e, now); err != nil || !due {
				if err != nil {
					return err
				}
				continue
			}
			err := s.store.Update(ctx, func(tx storage.Tx) error {
				cur, err := tx.Get(e.Key)
				if errors.Is(err, storage.ErrNotFound) {
					return nil
				} else if err != nil {
					return err
				}
				_, err = settle(ctx, tx, cur, now)
				return err
			})
			if err != nil {
				return fmt.Errorf("resources: sweeping %s: %w", e.Key, err)
			}
		}
	}
}

func (s *Service) settleSubEntry(ctx context.Context, tx storage.Tx, e storage.Entry, now time.Time) (bool, error) {
	var r subRecord
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return false, fmt.Errorf("resources: decoding %s: %w", e.Key, err)
	}
	if r.stateAt(now) == r.State {
		return false, nil
	}
	if tx == nil {
		return true, nil
	}
	if err := s.settleSub(ctx, tx, &r, now); err != nil {
		return false, err
	}
	return true, storage.PutJSON(tx, e.Key, r, e.Version)
}

func (s *Service) settleRegEntry(ctx context.Context, tx storage.Tx, e storage.Entry, now time.Time) (bool, error) {
	var r registration
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return false, fmt.Errorf("resources: decoding %s: %w", e.Key, err)
	}
	if r.stateAt(now) == r.State {
		return false, nil
	}
	if tx == nil {
		return true, nil
	}
	if err := s.settleReg(ctx, tx, &r, now); err != nil {
		return false, err
	}
	return true, storage.PutJSON(tx, e.Key, r, e.Version)
}
