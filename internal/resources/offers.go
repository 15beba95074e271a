package resources

import (
	"strings"

	"github.com/customerkey/customerkey/internal/errkind"
)

// Offer is the commercial offer a subscription was bought under. Customer
// Key accepts paid offers only: "Subscriptions you got through Free, Trial,
// Sponsorships, MSDN Subscriptions, and subscriptions under Legacy Support
// aren't eligible."
type Offer string

// Offers.
const (
	PayAsYouGo                 Offer = "PayAsYouGo"
	EnterpriseAgreement        Offer = "EnterpriseAgreement"
	MicrosoftCustomerAgreement Offer = "MicrosoftCustomerAgreement"
	FreeTrial                  Offer = "FreeTrial"
	MSDN                       Offer = "MSDN"
	Sponsorship                Offer = "Sponsorship"
	LegacySupport              Offer = "LegacySupport"
)

// Offers lists every offer, paid ones first.
var Offers = []Offer{PayAsYouGo, EnterpriseAgreement, MicrosoftCustomerAgreement, FreeTrial, MSDN, Sponsorship, LegacySupport}

type offerInfo struct {
	paid    bool
	quotaID string // ARM subscriptionPolicies.quotaId
	offerID string // the commerce offer number, where Azure has a well-known one
	display string
}

// The quota ids are the ones ARM reports in subscriptionPolicies.quotaId.
// Microsoft Customer Agreement subscriptions report the Pay-As-You-Go quota
// and legacy offers the default one, so QuotaID does not identify an offer.
var offers = map[Offer]offerInfo{
	PayAsYouGo:                 {true, "PayAsYouGo_2014-09-01", "MS-AZR-0003P", "Pay-As-You-Go"},
	EnterpriseAgreement:        {true, "EnterpriseAgreement_2014-09-01", "MS-AZR-0017P", "Enterprise Agreement"},
	MicrosoftCustomerAgreement: {true, "PayAsYouGo_2014-09-01", "MS-AZR-0017G", "Microsoft Azure Plan"},
	FreeTrial:                  {false, "FreeTrial_2014-09-01", "MS-AZR-0044P", "Free Trial"},
	MSDN:                       {false, "MSDN_2014-09-01", "MS-AZR-0062P", "Visual Studio Professional subscription (MSDN)"},
	Sponsorship:                {false, "Sponsored_2016-01-01", "MS-AZR-0036P", "Azure Sponsorship"},
	LegacySupport:              {false, "Default_2014-09-01", "", "Legacy support offer"},
}

// Paid reports whether the offer is paid, the condition Customer Key puts
// on a custody domain.
func (o Offer) Paid() bool { return offers[o].paid }

// QuotaID is ARM's subscriptionPolicies.quotaId for the offer.
func (o Offer) QuotaID() string { return offers[o].quotaID }

// OfferID is the commerce offer number (MS-AZR-…), empty when there is
// none.
func (o Offer) OfferID() string { return offers[o].offerID }

// DisplayName is the offer's name as the portal shows it.
func (o Offer) DisplayName() string { return offers[o].display }

// SpendingLimit is ARM's subscriptionPolicies.spendingLimit: "On" for the
// credit-based (unpaid) offers, "Off" for paid ones.
func (o Offer) SpendingLimit() string {
	if o.Paid() {
		return "Off"
	}
	return "On"
}

// Valid reports whether o is a known offer.
func (o Offer) Valid() bool { _, ok := offers[o]; return ok }

// ParseOffer finds an offer by name, offer number or display name,
// ignoring case; "" is Pay-As-You-Go.
func ParseOffer(s string) (Offer, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return PayAsYouGo, nil
	}
	for _, o := range Offers {
		i := offers[o]
		if strings.EqualFold(s, string(o)) || strings.EqualFold(s, i.display) || (i.offerID != "" && strings.EqualFold(s, i.offerID)) {
			return o, nil
		}
	}
	names := make([]string, len(Offers))
	for i, o := range Offers {
		names[i] = string(o)
	}
	return "", errkind.Errorf(errkind.Invalid, "unknown offer %q; known offers: %s", s, strings.Join(names, ", ")).WithCode(CodeInvalidSubscription)
}

// State is a subscription's state, spelled as ARM spells it.
type State string

// Subscription states. Enabled, Warned and PastDue subscriptions work;
// Disabled ones are read-only and their vaults stop serving; Deleted ones
// are gone.
const (
	Enabled  State = "Enabled"
	Warned   State = "Warned"
	PastDue  State = "PastDue"
	Disabled State = "Disabled"
	Deleted  State = "Deleted"
)

// rank orders states along the cancellation path.
func (s State) rank() int {
	switch s {
	case Disabled:
		return 1
	case Deleted:
		return 2
	}
	return 0
}

// RegistrationState is the state of a resource provider or a feature in a
// subscription, spelled as ARM spells it.
type RegistrationState string

// Registration states.
const (
	NotRegistered RegistrationState = "NotRegistered"
	Registering   RegistrationState = "Registering"
	Registered    RegistrationState = "Registered"
	Unregistering RegistrationState = "Unregistering"
)
