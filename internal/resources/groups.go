package resources

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/storage"
)

// ResourceGroup is a named container of resources in a subscription. Names
// are unique per subscription without regard to case; Name keeps the
// casing it was created with.
type ResourceGroup struct {
	SubscriptionID string            `json:"subscriptionId"`
	Name           string            `json:"name"`
	Location       string            `json:"location"` // a Region name, lower case
	Tags           map[string]string `json:"tags,omitempty"`
	CreatedAt      time.Time         `json:"createdAt"`
	CreatedBy      string            `json:"createdBy,omitempty"`
	ChangedAt      time.Time         `json:"changedAt"`
	ChangedBy      string            `json:"changedBy,omitempty"`
}

// ResourceID is the group's ARM id.
func (g ResourceGroup) ResourceID() resourceid.ID {
	return resourceid.ResourceGroup(g.SubscriptionID, g.Name)
}

// GroupSpec is the body of a resource group create-or-update.
type GroupSpec struct {
	Location string // a Region name or display name; required
	Tags     map[string]string
}

// Tag limits, as ARM's.
const (
	MaxTags        = 50
	MaxTagNameLen  = 512
	MaxTagValueLen = 256
)

// CheckGroupName applies ARM's resource group name rules: 1 to 90
// letters, digits, '-', '_', '.', '(' or ')', not ending in '.'.
func CheckGroupName(name string) error {
	if n := utf8.RuneCountInString(name); n < 1 || n > 90 {
		return errkind.Errorf(errkind.Invalid, "the resource group name '%s' must have 1 to 90 characters", name).WithCode(CodeInvalidResourceGroup)
	}
	var bad []string
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_.()", r) && !slices.Contains(bad, string(r)) {
			bad = append(bad, string(r))
		}
	}
	if len(bad) > 0 || !utf8.ValidString(name) {
		return errkind.Errorf(errkind.Invalid,
			"the provided resource group name '%s' has these invalid characters: '%s'; the name can only be a letter, digit, '-', '.', '(', ')' or '_'",
			name, strings.Join(bad, "")).WithCode(CodeInvalidResourceGroup)
	}
	if strings.HasSuffix(name, ".") {
		return errkind.Errorf(errkind.Invalid, "the resource group name '%s' must not end with a period", name).WithCode(CodeInvalidResourceGroup)
	}
	return nil
}

func checkTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return errkind.Errorf(errkind.Invalid, "a resource can have at most %d tags; %d were given", MaxTags, len(tags)).WithCode(CodeInvalidTag)
	}
	for k, v := range tags {
		if k == "" || utf8.RuneCountInString(k) > MaxTagNameLen || strings.ContainsAny(k, "<>%&\\?/") || strings.ContainsFunc(k, unicode.IsControl) {
			return errkind.Errorf(errkind.Invalid, "the tag name '%s' must have 1 to %d characters and none of <>%%&\\?/", k, MaxTagNameLen).WithCode(CodeInvalidTag)
		}
		if utf8.RuneCountInString(v) > MaxTagValueLen {
			return errkind.Errorf(errkind.Invalid, "the value of tag '%s' must have at most %d characters", k, MaxTagValueLen).WithCode(CodeInvalidTag)
		}
	}
	return nil
}

func groupKey(sub, name string) string { return kGroup + sub + "/" + fold(name) }

// CreateOrUpdateGroup creates resource group name in subscription sub, or
// replaces the tags of the existing one (whose location cannot change). It
// reports whether it created the group. The subscription must be usable.
func (s *Service) CreateOrUpdateGroup(ctx context.Context, c directory.Caller, sub, name string, spec GroupSpec) (ResourceGroup, bool, error) {
	const action = "resources/resourceGroups/write"
	if err := CheckGroupName(name); err != nil {
		return ResourceGroup{}, false, err
	}
	if strings.TrimSpace(spec.Location) == "" {
		return ResourceGroup{}, false, errkind.New(errkind.Invalid, "the location property is required for a resource group").WithCode(CodeLocationRequired)
	}
	region, ok := LookupRegion(spec.Location)
	if !ok {
		return ResourceGroup{}, false, errkind.Errorf(errkind.Invalid,
			"the provided location '%s' is not available for resource group; list of available regions is '%s'",
			spec.Location, regionNames()).WithCode(CodeLocationNotAvailable)
	}
	if err := checkTags(spec.Tags); err != nil {
		return ResourceGroup{}, false, err
	}
	subscription, err := s.writableSub(ctx, c, sub, action)
	if err != nil {
		return ResourceGroup{}, false, err
	}
	var (
		g       ResourceGroup
		created bool
	)
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		now := s.now().UTC()
		key := groupKey(subscription.ID, name)
		var old ResourceGroup
		v, err := storage.GetJSON(tx, key, &old)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			created = true
			g = ResourceGroup{SubscriptionID: subscription.ID, Name: name, Location: region.Name, Tags: maps.Clone(spec.Tags),
				CreatedAt: now, CreatedBy: c.ID, ChangedAt: now, ChangedBy: c.ID}
			v = storage.MustNotExist
		case err != nil:
			return err
		case old.Location != region.Name:
			return errkind.Errorf(errkind.Conflict, "invalid resource group location '%s'; the resource group already exists in location '%s'",
				region.Name, old.Location).WithCode(CodeInvalidResourceGroupLocation)
		default:
			created = false
			g = old
			g.Tags, g.ChangedAt, g.ChangedBy = maps.Clone(spec.Tags), now, c.ID
		}
		if err := storage.PutJSON(tx, key, g, v); err != nil {
			return err
		}
		reason := "updated"
		if created {
			reason = "created in " + region.Name
		}
		return s.record(ctx, tx, c, subscription.TenantID, action, g.ResourceID().String(), reason)
	})
	if err != nil {
		return ResourceGroup{}, false, err
	}
	return g, created, nil
}

// Group returns a resource group; the name is matched without regard to
// case.
func (s *Service) Group(ctx context.Context, sub, name string) (ResourceGroup, error) {
	var g ResourceGroup
	err := s.store.View(ctx, func(tx storage.Tx) error {
		r, _, err := loadSub(tx, sub)
		if err != nil {
			return err
		}
		g, _, err = loadGroup(tx, r.ID, name)
		return err
	})
	return g, err
}

func loadGroup(tx storage.Tx, sub, name string) (ResourceGroup, int64, error) {
	var g ResourceGroup
	if CheckGroupName(name) != nil {
		return g, 0, errGroupNotFound(name)
	}
	v, err := storage.GetJSON(tx, groupKey(sub, name), &g)
	return g, v, notFound(err, errGroupNotFound(name))
}

// Groups lists the resource groups of a subscription, ordered by name
// without regard to case.
func (s *Service) Groups(ctx context.Context, sub string) ([]ResourceGroup, error) {
	var out []ResourceGroup
	err := s.store.View(ctx, func(tx storage.Tx) error {
		r, _, err := loadSub(tx, sub)
		if err != nil {
			return err
		}
		entries, err := tx.List(kGroup+r.ID+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			var g ResourceGroup
			if _, err := storage.GetJSON(tx, e.Key, &g); err != nil {
				return err
			}
			out = append(out, g)
		}
		return nil
	})
	return out, err
}

// DeleteGroup deletes a resource group. A group that holds resources is
// refused (Conflict, ResourceGroupDeletionBlocked) unless force is set, in
// which case its resources are deleted first through Contents. The
// subscription must be usable.
func (s *Service) DeleteGroup(ctx context.Context, c directory.Caller, sub, name string, force bool) error {
	const action = "resources/resourceGroups/delete"
	subscription, err := s.writableSub(ctx, c, sub, action)
	if err != nil {
		return err
	}
	g, err := s.Group(ctx, subscription.ID, name)
	if err != nil {
		return err
	}
	held := 0
	if s.contents != nil {
		if held, err = s.contents.CountInResourceGroup(ctx, g.SubscriptionID, g.Name); err != nil {
			return err
		}
	}
	if held > 0 && !force {
		return errkind.Errorf(errkind.Conflict,
			"the resource group '%s' holds %d %s; delete them first, or delete the group with force to delete them with it",
			g.Name, held, plural(held, "resource", "resources")).WithCode(CodeResourceGroupDeletionBlocked)
	}
	if held > 0 {
		if err := s.contents.DeleteResourcesIn(ctx, c, g.SubscriptionID, g.Name); err != nil {
			return fmt.Errorf("resources: deleting the resources of group %s: %w", g.Name, err)
		}
	}
	return s.store.Update(ctx, func(tx storage.Tx) error {
		_, v, err := loadGroup(tx, g.SubscriptionID, g.Name)
		if err != nil {
			return err
		}
		if err := tx.Delete(groupKey(g.SubscriptionID, g.Name), v); err != nil {
			return err
		}
		reason := ""
		if held > 0 {
			reason = fmt.Sprintf("forced: %d %s deleted with it", held, plural(held, "resource", "resources"))
		}
		return s.record(ctx, tx, c, subscription.TenantID, action, g.ResourceID().String(), reason)
	})
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
