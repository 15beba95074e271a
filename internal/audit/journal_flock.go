//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/customerkey/customerkey/internal/errkind"
)

// lockDir takes an exclusive lock on the journal directory for as long as
// the returned file stays open: two writers appending to one segment would
// interleave frames. flock locks belong to the open file, so a second
// Batcher in the same process is refused too, and the kernel releases the
// lock of a process that dies.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, fmt.Sprintf("audit: cannot open the journal lock %s", path), err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errkind.Errorf(errkind.Unavailable,
				"audit: the journal %s is in use by another process or Batcher; stop it, or give this one another directory", dir)
		}
		return nil, errkind.Wrap(errkind.Internal, fmt.Sprintf("audit: cannot lock the journal %s", dir), err)
	}
	return f, nil
}

// syncDir makes the creation and removal of names in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
