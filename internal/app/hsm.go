package app

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/vault"
)

var (
	_ vault.HSM       = (*hsm.HSM)(nil)
	_ barrier.HSMKeys = (*hsm.HSM)(nil)
	_ dep.HSMKeys     = (*hsm.HSM)(nil)
)

// hsmConfig is the HSM the configuration names, with its PIN read from
// hsm-pin-file or CUSTOMERKEY_HSM_PIN.
func hsmConfig(cfg config.Config) (hsm.Config, error) {
	pin, err := hsm.ReadPIN(cfg.HSMPINFile)
	if err != nil {
		return hsm.Config{}, err
	}
	return hsm.Config{Module: cfg.HSMModule, Token: cfg.HSMToken, PIN: pin, MaxSessions: cfg.HSMMaxSessions}, nil
}

// openHSM opens the configured HSM, if any. When it fails, the server
// still starts unless the HSM seals the store: standard vaults and software
// keys keep working, and premium vaults answer RSA-HSM and EC-HSM requests
// with the reason (HSMUnavailable). A failed start is not retried: the
// usual causes (a wrong PIN, a missing module) need the operator, and
// retrying a wrong PIN would lock the token.
func (s *Server) openHSM(ctx context.Context) error {
	if s.cfg.HSMModule == "" {
		return nil
	}
	c, err := hsmConfig(s.cfg)
	if err == nil {
		s.hsm, err = hsm.Open(ctx, c)
	}
	if err != nil {
		if s.cfg.Seal == config.SealPKCS11 {
			return fmt.Errorf("the HSM seals the store (seal: pkcs11), so the server cannot start without it: %w", err)
		}
		s.hsmErr = err
		s.log.Error("the HSM failed to start: premium vaults refuse RSA-HSM and EC-HSM keys until it is fixed and "+
			"the server restarted; standard vaults and software-protected keys are not affected", "err", err)
		return nil
	}
	s.log.Info("HSM ready", "module", s.cfg.HSMModule, "token", s.cfg.HSMToken)
	return nil
}

// vaultHSM is the HSM for vault.Options: nil, not a typed nil, without one.
func (s *Server) vaultHSM() vault.HSM {
	if s.hsm == nil {
		return nil
	}
	return s.hsm
}

// depHSM is the HSM for dep.Options, which keeps the availability keys of
// new policies in it so that a purge can destroy them: nil, not a typed
// nil, without one.
func (s *Server) depHSM() dep.HSMKeys {
	if s.hsm == nil {
		return nil
	}
	return s.hsm
}

// openSealer returns what seals the barrier's keyring: the HSM's seal key
// or the root key file, as configured. A keyring sealed the other way is
// refused with what to do, before anything could create a key file that
// cannot open it.
func (s *Server) openSealer(ctx context.Context) (barrier.Sealer, error) {
	sealedBy, err := barrier.SealedBy(ctx, s.raw)
	if err != nil {
		return nil, err
	}
	switch {
	case s.cfg.Seal == config.SealPKCS11 && sealedBy == barrier.SealFile:
		return nil, errkind.New(errkind.FailedPrecondition, "the store's keyring is sealed by the root key file "+
			rootKeyFile+", but the configuration says seal: pkcs11; move the seal to the HSM first with "+
			"`customerkey seal migrate --to pkcs11` (docs/hsm.md), or start with seal: file")
	case s.cfg.Seal == config.SealFile && sealedBy == barrier.SealPKCS11:
		return nil, errkind.New(errkind.FailedPrecondition, "the store's keyring is sealed by an HSM, but the "+
			"configuration says seal: file; start with seal: pkcs11 and the hsm-module, hsm-token and hsm-pin-file "+
			"it was sealed with")
	case s.cfg.Seal == config.SealPKCS11:
		return barrier.NewHSMSealer(s.hsm), nil
	}
	return loadRootKey(ctx, s.raw, filepath.Join(s.cfg.DataDir, rootKeyFile))
}
