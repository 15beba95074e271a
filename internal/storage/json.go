package storage

import (
	"encoding/json"
	"fmt"
)

// GetJSON reads key into v and returns its version; ErrNotFound when the
// key is missing. Domain packages keep their records as JSON values.
func GetJSON(tx Tx, key string, v any) (int64, error) {
	e, err := tx.Get(key)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return 0, fmt.Errorf("storage: decoding %s: %w", key, err)
	}
	return e.Version, nil
}

// PutJSON stores v as JSON under key when ifVersion holds (see Tx.Put).
func PutJSON(tx Tx, key string, v any, ifVersion int64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("storage: encoding %s: %w", key, err)
	}
	_, err = tx.Put(key, b, ifVersion)
	return err
}
