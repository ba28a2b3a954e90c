#!powershell

# Copyright: (c) 2025, Depot developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.depot.software.plugins.module_utils._DepotWin

# The Windows executor of depot.software.software_facts (documentation: software_facts.py): installed
# software from the Uninstall registry keys (HKLM in both registry views, scope machine; the Uninstall
# key of every loaded user hive, scope user) and the installed and provisioned MSIX/AppX packages, as
# ansible_facts.depot_software with the same keys as on POSIX.

$spec = @{
    options = @{
        name = @{ type = 'str' }
        sources = @{ type = 'list'; elements = 'str'; choices = @('dpkg', 'rpm', 'registry', 'msix') }
    }
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

Function New-SoftwareEntry {
    <#
    .SYNOPSIS
    One fact entry; every key is present, unknown ones are null.
    #>
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param (
        [String]$Name,
        [String]$Version,
        [String]$Publisher,
        [String]$Source,
        [String]$ProductCode,
        [String]$UninstallString,
        [String]$InstallDate,
        [String]$Architecture,
        [String]$Scope = 'machine'
    )

    # [String] parameters turn $null into '': report what is unknown as null.
    $entry = [Ordered]@{
        name = $Name
        version = $Version
        publisher = $Publisher
        source = $Source
        product_code = $ProductCode
        uninstall_string = $UninstallString
        install_date = $InstallDate
        architecture = $Architecture
        scope = $Scope
    }
    foreach ($key in @($entry.Keys)) {
        if ($entry[$key] -eq '') {
            $entry[$key] = $null
        }
    }
    $entry
}

Function Get-RegistrySoftware {
    [CmdletBinding()]
    param ()

    foreach ($item in @(Get-DepotUninstallEntry)) {
        $entryParams = @{
            Name = $item.Name
            Version = $item.Version
            Publisher = $item.Publisher
            Source = 'registry'
            # The MSI product code for Windows Installer products, else the key's own name.
            ProductCode = $item.KeyName
            UninstallString = $item.UninstallString
            InstallDate = $item.InstallDate
            Architecture = $item.Architecture
            Scope = $item.Scope
        }
        New-SoftwareEntry @entryParams
    }
}

Function Get-MsixSoftware {
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Object[]]
        [AllowEmptyCollection()]
        $Package
    )

    # A provisioned package is installed for every user: it is reported once, with scope machine.
    $provisioned = @{}
    foreach ($item in $Package) {
        if ($item.Provisioned) {
            $provisioned[$item.FullName] = $true
        }
    }
    $seen = @{}
    foreach ($item in $Package) {
        if ($item.IsFramework -or $item.IsResourcePackage -or $seen.ContainsKey($item.FullName)) {
            continue
        }
        $seen[$item.FullName] = $true
        $scope = 'user'
        if ($provisioned.ContainsKey($item.FullName)) {
            $scope = 'machine'
        }
        $entryParams = @{
            Name = $item.Name
            Version = $item.Version
            Publisher = $item.Publisher
            Source = 'msix'
            ProductCode = $item.FamilyName
            Architecture = $item.Architecture
            Scope = $scope
        }
        New-SoftwareEntry @entryParams
    }
}

$params = $module.Params
# On Windows the package databases are the registry and the AppX store; dpkg and rpm are skipped so
# one task serves a mixed fleet.
$sources = @('registry', 'msix')
if ($params.sources) {
    $sources = @($params.sources | Where-Object { $_ -in @('registry', 'msix') } | Select-Object -Unique)
}

$entries = @()
$read = @()
if ($sources -contains 'registry') {
    $entries += @(Get-RegistrySoftware)
    $read += 'registry'
}
if ($sources -contains 'msix' -and (Get-Command -Name Get-AppxPackage -ErrorAction SilentlyContinue)) {
    $packages = $null
    try {
        $packages = @(Get-DepotMsixPackage -IncludeProvisioned)
    }
    catch {
        $module.Warn("msix: cannot list the packages: $($_.Exception.Message)")
    }
    if ($null -ne $packages) {
        $entries += @(Get-MsixSoftware -Package $packages)
        $read += 'msix'
    }
}

$selected = @($entries)
if ($params.name) {
    # -like takes the same * ? [...] wildcards as a shell glob, case-insensitively.
    $selected = @($selected | Where-Object { $_.name -like $params.name })
}
$selected = @($selected | Sort-Object -Property @{ Expression = { $_.name } }, @{ Expression = { $_.source } })

$module.Result.changed = $false
$module.Result.ansible_facts = @{ depot_software = $selected }
$module.Result.sources = $read
$module.ExitJson()
