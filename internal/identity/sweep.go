package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/customerkey/customerkey/internal/storage"
)

const sweepPage = 500

// Sweep deletes expired device codes (with their user codes),
// authorization codes, refresh tokens and remembered assertion ids. The
// app's scheduler calls it periodically; nothing depends on it for
// correctness (every reader checks expiry), only for space.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	total := 0
	for _, prefix := range []string{kDevice, kCode, kRefresh, kJTI} {
		n, err := s.sweepPrefix(ctx, prefix)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Service) sweepPrefix(ctx context.Context, prefix string) (int, error) {
	deleted := 0
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		var page []storage.Entry
		err := s.store.View(ctx, func(tx storage.Tx) error {
			var err error
			page, err = tx.List(prefix, after, sweepPage)
			return err
		})
		if err != nil {
			return deleted, fmt.Errorf("identity: sweeping %s: %w", prefix, err)
		}
		if len(page) == 0 {
			return deleted, nil
		}
		after = page[len(page)-1].Key
		now := s.now()
		var expired []storage.Entry
		for _, e := range page {
			var x expiring
			if json.Unmarshal(e.Value, &x) == nil && !x.Expires.IsZero() && !now.Before(x.Expires) {
				expired = append(expired, e)
			}
		}
		if len(expired) == 0 {
			continue
		}
		err = s.store.Update(ctx, func(tx storage.Tx) error {
			for _, e := range expired {
				// The version condition leaves a record that changed since
				// it was read (a refresh) alone.
				if err := tx.Delete(e.Key, e.Version); err != nil && !errors.Is(err, storage.ErrConflict) {
					return err
				}
				if prefix == kDevice {
					var d deviceRecord
					if json.Unmarshal(e.Value, &d) == nil && d.UserCode != "" {
						if err := s.deleteUserCode(tx, d.UserCode, strings.TrimPrefix(e.Key, kDevice)); err != nil {
							return err
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			return deleted, fmt.Errorf("identity: sweeping %s: %w", prefix, err)
		}
		deleted += len(expired)
	}
}

// deleteUserCode removes a user code index entry if it still points at
// the device code hash h (the code may have been drawn again since).
func (s *Service) deleteUserCode(tx storage.Tx, code, h string) error {
	e, err := tx.Get(kUserCode + code)
	if err != nil {
		return nil
	}
	if string(e.Value) != h {
		return nil
	}
	return tx.Delete(kUserCode+code, e.Version)
}
