//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package audit

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/customerkey/customerkey/internal/errkind"
)

// lockDir only opens the lock file here: this platform has no flock, so
// keeping one writer per journal is up to the caller (the server's data
// directory is already locked by its store).
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, fmt.Sprintf("audit: cannot open the journal lock %s", path), err)
	}
	return f, nil
}

// syncDir does nothing: a directory cannot be opened for syncing here
// (Windows), whose file system journals the creation and removal of names
// itself.
func syncDir(string) error { return nil }
