//go:build !linux

package audit

import "os"

// datasync makes f's data durable; elsewhere than Linux, File.Sync is the
// portable call (F_FULLFSYNC on macOS).
func datasync(f *os.File) error { return f.Sync() }
