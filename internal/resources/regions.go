package resources

import "strings"

// Region is an Azure region resources can be placed in.
type Region struct {
	Name        string // e.g. "westeurope", the form ARM stores
	DisplayName string // e.g. "West Europe"
}

// Regions lists the Azure public-cloud regions this system accepts.
var Regions = []Region{
	{"eastus", "East US"}, {"eastus2", "East US 2"}, {"centralus", "Central US"},
	{"northcentralus", "North Central US"}, {"southcentralus", "South Central US"},
	{"westcentralus", "West Central US"}, {"westus", "West US"}, {"westus2", "West US 2"},
	{"westus3", "West US 3"}, {"canadacentral", "Canada Central"}, {"canadaeast", "Canada East"},
	{"brazilsouth", "Brazil South"}, {"mexicocentral", "Mexico Central"},
	{"northeurope", "North Europe"}, {"westeurope", "West Europe"}, {"uksouth", "UK South"},
	{"ukwest", "UK West"}, {"francecentral", "France Central"}, {"germanywestcentral", "Germany West Central"},
	{"swedencentral", "Sweden Central"}, {"switzerlandnorth", "Switzerland North"},
	{"norwayeast", "Norway East"}, {"polandcentral", "Poland Central"}, {"italynorth", "Italy North"},
	{"spaincentral", "Spain Central"}, {"southeastasia", "Southeast Asia"}, {"eastasia", "East Asia"},
	{"japaneast", "Japan East"}, {"japanwest", "Japan West"}, {"koreacentral", "Korea Central"},
	{"australiaeast", "Australia East"}, {"australiasoutheast", "Australia Southeast"},
	{"centralindia", "Central India"}, {"southindia", "South India"},
	{"southafricanorth", "South Africa North"}, {"uaenorth", "UAE North"}, {"qatarcentral", "Qatar Central"},
	{"israelcentral", "Israel Central"},
}

// LookupRegion finds a region by name or display name, ignoring case and
// spaces as ARM does ("West Europe" is westeurope).
func LookupRegion(s string) (Region, bool) {
	n := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	for _, r := range Regions {
		if r.Name == n {
			return r, true
		}
	}
	return Region{}, false
}

func regionNames() string {
	names := make([]string, len(Regions))
	for i, r := range Regions {
		names[i] = r.Name
	}
	return strings.Join(names, ",")
}
