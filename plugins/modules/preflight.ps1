#!powershell

# Copyright: (c) 2025, Depot developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.depot.software.plugins.module_utils._DepotWin

# The Windows executor of depot.software.preflight (documentation: preflight.py). It only reads: a
# pending reboot, a busy Windows Installer, free disk space, logged-on users, the network and the
# power source. Checks named in require must pass or the task fails with a message naming them.

$allChecks = @('pending_reboot', 'installer_busy', 'free_disk', 'logged_on_users', 'network', 'power')
$spec = @{
    options = @{
        checks = @{ type = 'list'; elements = 'str'; choices = $allChecks; default = $allChecks }
        path = @{ type = 'path' }
        min_free_mb = @{ type = 'int'; default = 0 }
        require = @{ type = 'list'; elements = 'str'; choices = $allChecks; default = @() }
        # POSIX only (dpkg/rpm lock files); accepted so one task serves a mixed fleet.
        lock_files = @{ type = 'list'; elements = 'path' }
    }
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

Function Get-PendingReboot {
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param ()

    $reasons = [System.Collections.Generic.List[String]]::new()
    $indicators = @(
        @{ Key = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending'; Reason = 'Component Based Servicing RebootPending' },
        @{ Key = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired'; Reason = 'Windows Update RebootRequired' }
    )
    foreach ($indicator in $indicators) {
        if (Test-Path -LiteralPath $indicator.Key) {
            $reasons.Add($indicator.Reason)
        }
    }

    # Files Windows replaces at the next boot (in-use files an installer could not overwrite).
    $sessionManager = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager' -ErrorAction SilentlyContinue
    foreach ($valueName in @('PendingFileRenameOperations', 'PendingFileRenameOperations2')) {
        if ($sessionManager -and @($sessionManager.$valueName | Where-Object { $_ }).Count -gt 0) {
            $reasons.Add($valueName)
        }
    }

    # A rename takes effect at the next boot: until then the active name differs from the new one.
    $active = (Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName' -ErrorAction SilentlyContinue).ComputerName
    $pending = (Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName' -ErrorAction SilentlyContinue).ComputerName
    if ($active -and $pending -and $active -ne $pending) {
        $reasons.Add("computer rename pending ($active to $pending)")
    }

    # The Configuration Manager client knows about reboots it scheduled itself; only when it is installed.
    try {
        $ccm = Invoke-CimMethod -Namespace 'root\ccm\ClientSDK' -ClassName 'CCM_ClientUtilities' -MethodName 'DetermineIfRebootPending' -ErrorAction Stop
        if ($ccm.ReturnValue -eq 0 -and ($ccm.RebootPending -or $ccm.IsHardRebootPending)) {
            $reasons.Add('ConfigMgr client reboot pending')
        }
    }
    catch {
        $null = $_  # no ConfigMgr client
    }

    @{ value = ($reasons.Count -gt 0); reasons = @($reasons) }
}

Function Get-FreeDisk {
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Path,

        [Int64]
        $MinFreeMb
    )

    # The path need not exist yet: measure its nearest existing parent.
    $probe = $Path
    while (-not (Test-Path -LiteralPath $probe)) {
        $parent = [IO.Path]::GetDirectoryName($probe.TrimEnd('\'))
        if (-not $parent -or $parent -eq $probe) {
            break
        }
        $probe = $parent
    }
    $freeMb = [Int64][Math]::Floor([Depot.Win.Disk]::GetFreeBytes($probe) / 1MB)
    @{ path = $Path; free_mb = $freeMb; passed = ($freeMb -ge $MinFreeMb) }
}

Function Get-LoggedOnUser {
    [CmdletBinding()]
    param ()

    $states = @{ Active = 'active'; Disconnected = 'disconnected' }
    foreach ($session in @(Get-DepotSession)) {
        $station = $null
        if ($session.StationName) {
            $station = $session.StationName.ToLowerInvariant()
        }
        $state = $states[[String]$session.State]
        if (-not $state) {
            $state = 'online'
        }
        $since = $null
        if ($session.LogonTime) {
            $since = $session.LogonTime.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
        }
        @{
            user = $session.UserName
            session = [String]$session.SessionId
            tty = $station
            state = $state
            remote = [Bool]($station -and $station -ne 'console')
            remote_host = $session.ClientAddress
            since = $since
        }
    }
}

Function Get-NetworkState {
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param ()

    # The interface of the default route with the lowest metric (IPv4 first, then IPv6).
    $route = $null
    foreach ($prefix in @('0.0.0.0/0', '::/0')) {
        $route = Get-NetRoute -DestinationPrefix $prefix -ErrorAction SilentlyContinue |
            Sort-Object -Property { $_.RouteMetric + $_.InterfaceMetric } |
            Select-Object -First 1
        if ($route) {
            break
        }
    }
    if (-not $route) {
        return @{ type = 'none'; metered = $null; interface = $null; category = $null }
    }

    $nic = $null
    foreach ($candidate in [System.Net.NetworkInformation.NetworkInterface]::GetAllNetworkInterfaces()) {
        $properties = $candidate.GetIPProperties()
        $index = $null
        if ($candidate.Supports([System.Net.NetworkInformation.NetworkInterfaceComponent]::IPv4)) {
            $index = $properties.GetIPv4Properties().Index
        }
        elseif ($candidate.Supports([System.Net.NetworkInformation.NetworkInterfaceComponent]::IPv6)) {
            $index = $properties.GetIPv6Properties().Index
        }
        if ($index -eq $route.InterfaceIndex) {
            $nic = $candidate
            break
        }
    }

    $type = 'other'
    if ($nic) {
        $type = switch ([String]$nic.NetworkInterfaceType) {
            { $_ -like 'Ethernet*' -or $_ -eq 'GigabitEthernet' -or $_ -eq 'FastEthernetT' } { 'ethernet'; break }
            'Wireless80211' { 'wifi'; break }
            { $_ -like 'Wwanpp*' } { 'cellular'; break }
            { $_ -in @('Tunnel', 'Ppp') } { 'tunnel'; break }
            default { 'other' }
        }
    }

    $connectionProfile = Get-NetConnectionProfile -InterfaceIndex $route.InterfaceIndex -ErrorAction SilentlyContinue |
        Select-Object -First 1
    $category = $null
    if ($connectionProfile) {
        $category = switch ([String]$connectionProfile.NetworkCategory) {
            'DomainAuthenticated' { 'domain' }
            'Private' { 'private' }
            'Public' { 'public' }
            default { $null }
        }
    }

    @{
        type = $type
        metered = Get-NetworkMetered -AdapterId $(if ($nic) { $nic.Id } else { $null })
        interface = $route.InterfaceAlias
        category = $category
    }
}

Function Get-NetworkMetered {
    <#
    .SYNOPSIS
    The Windows cost setting of a network adapter's connection: $true (metered), $false, or $null (unknown).
    #>
    [CmdletBinding()]
    param (
        [String]
        $AdapterId
    )

    try {
        # The connection cost is only exposed through the Windows Runtime API (Windows PowerShell only).
        $networkInformation = [Type]::GetType(
            'Windows.Networking.Connectivity.NetworkInformation, Windows.Networking.Connectivity, ContentType=WindowsRuntime')
        if (-not $networkInformation) {
            return $null
        }
        $connection = $null
        if ($AdapterId) {
            $connection = $networkInformation::GetConnectionProfiles() |
                Where-Object { $_.NetworkAdapter -and ('{{{0}}}' -f $_.NetworkAdapter.NetworkAdapterId) -eq $AdapterId } |
                Select-Object -First 1
        }
        if (-not $connection) {
            $connection = $networkInformation::GetInternetConnectionProfile()
        }
        if (-not $connection) {
            return $null
        }
        $cost = $connection.GetConnectionCost()
        if ($cost.Roaming -or $cost.OverDataLimit) {
            return $true
        }
        switch ([String]$cost.NetworkCostType) {
            'Unrestricted' { return $false }
            'Fixed' { return $true }
            'Variable' { return $true }
        }
    }
    catch {
        $null = $_  # the Windows Runtime is not available (PowerShell 7, Server Core)
    }
    $null
}

Function Get-PowerState {
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param ()

    $batteries = @(Get-CimInstance -ClassName Win32_Battery -ErrorAction SilentlyContinue)
    if ($batteries.Count -eq 0) {
        return @{ on_ac = $true; battery_percent = $null }  # servers and virtual machines
    }
    # BatteryStatus 1 is "discharging"; 4 and 5 (low, critical) give no mains information, so they
    # count as battery too. 2, 3 and 6 to 11 mean the system has AC power.
    $onAc = @($batteries | Where-Object { $_.BatteryStatus -in @(1, 4, 5) }).Count -eq 0
    $charges = @($batteries | Where-Object { $null -ne $_.EstimatedChargeRemaining } |
            ForEach-Object { [Int32]$_.EstimatedChargeRemaining })
    $percent = $null
    if ($charges.Count -gt 0) {
        $percent = [Int32][Math]::Round(($charges | Measure-Object -Average).Average)
        $percent = [Math]::Max(0, [Math]::Min(100, $percent))
    }
    @{ on_ac = $onAc; battery_percent = $percent }
}

Function Test-CheckResult {
    <#
    .SYNOPSIS
    Whether a check passed, and what it observed in words for messages: @{ Passed; Observed }.
    #>
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Name,

        [AllowNull()]
        [Object]
        $Result,

        [Int64]
        $MinFreeMb
    )

    switch ($Name) {
        'pending_reboot' {
            if ($Result.value) {
                return @{ Passed = $false; Observed = 'a reboot is pending ({0})' -f ($Result.reasons -join ', ') }
            }
            return @{ Passed = $true; Observed = 'no reboot pending' }
        }
        'installer_busy' {
            if ($null -eq $Result.value) {
                return @{ Passed = $false; Observed = 'could not be tested' }
            }
            if ($Result.value) {
                $who = 'another process'
                if ($Result.holder.pid) {
                    $who = 'pid {0} ({1})' -f $Result.holder.pid, $Result.holder.name
                }
                return @{ Passed = $false; Observed = '{0} is held by {1}' -f $Result.holder.lock, $who }
            }
            return @{ Passed = $true; Observed = 'no installer lock held' }
        }
        'free_disk' {
            $text = '{0} MB free on {1}' -f $Result.free_mb, $Result.path
            if (-not $Result.passed) {
                return @{ Passed = $false; Observed = '{0}, below min_free_mb {1}' -f $text, $MinFreeMb }
            }
            return @{ Passed = $true; Observed = $text }
        }
        'logged_on_users' {
            if ($null -eq $Result) {
                return @{ Passed = $false; Observed = 'could not be determined' }
            }
            $sessions = @($Result)
            if ($sessions.Count -gt 0) {
                $who = @($sessions | ForEach-Object {
                        $where = $_.tty
                        if (-not $where) {
                            $where = $_.session
                        }
                        '{0} ({1})' -f $_.user, $where
                    }) -join ', '
                return @{ Passed = $false; Observed = '{0} user session(s): {1}' -f $sessions.Count, $who }
            }
            return @{ Passed = $true; Observed = 'nobody logged on' }
        }
        'network' {
            if ($null -eq $Result) {
                return @{ Passed = $false; Observed = 'could not be determined' }
            }
            if ($Result.type -eq 'none') {
                return @{ Passed = $false; Observed = 'no default route (type none)' }
            }
            if ($Result.metered -eq $true) {
                return @{ Passed = $false; Observed = '{0} connection on {1} is metered' -f $Result.type, $Result.interface }
            }
            return @{ Passed = $true; Observed = '{0} on {1}' -f $Result.type, $Result.interface }
        }
        'power' {
            if ($Result.on_ac -ne $true) {
                $percent = '?'
                if ($null -ne $Result.battery_percent) {
                    $percent = $Result.battery_percent
                }
                return @{ Passed = $false; Observed = 'on battery ({0}%)' -f $percent }
            }
            return @{ Passed = $true; Observed = 'on AC power' }
        }
    }
}

$params = $module.Params
$checks = @($params.checks | Select-Object -Unique)
$require = @($params.require | Select-Object -Unique)
$module.Result.changed = $false
$module.Result.boot_id = Get-DepotBootId

if ($params.min_free_mb -lt 0) {
    $module.FailJson("min_free_mb must be 0 or more, got $($params.min_free_mb)")
}
$missing = @($require | Where-Object { $checks -notcontains $_ })
if ($missing.Count -gt 0) {
    $module.FailJson(('require names check(s) not in checks: {0} (checks: {1})' -f ($missing -join ', '), ($checks -join ', ')))
}
$path = $params.path
if (-not $path) {
    $path = "$env:SystemDrive\"
}
if (-not [IO.Path]::IsPathRooted($path)) {
    $module.FailJson("path must be absolute, got '$path'")
}

$results = @{}
foreach ($check in $checks) {
    switch ($check) {
        'pending_reboot' {
            $results[$check] = Get-PendingReboot
        }
        'installer_busy' {
            $results[$check] = Test-DepotInstallerBusy
        }
        'free_disk' {
            $failure = $null
            try {
                $results[$check] = Get-FreeDisk -Path $path -MinFreeMb $params.min_free_mb
            }
            catch {
                $failure = "path ${path}: cannot measure free space: $($_.Exception.Message)"
            }
            if ($failure) {
                $module.FailJson($failure)
            }
        }
        'logged_on_users' {
            try {
                $results[$check] = @(Get-LoggedOnUser)
            }
            catch {
                $module.Warn("logged_on_users: cannot list the sessions: $($_.Exception.Message)")
                $results[$check] = $null
            }
        }
        'network' {
            try {
                $results[$check] = Get-NetworkState
            }
            catch {
                $module.Warn("network: cannot read the network state: $($_.Exception.Message)")
                $results[$check] = $null
            }
        }
        'power' {
            $results[$check] = Get-PowerState
        }
    }
}

$failed = @()
$observed = @{}
foreach ($check in $checks) {
    $outcome = Test-CheckResult -Name $check -Result $results[$check] -MinFreeMb $params.min_free_mb
    $observed[$check] = $outcome.Observed
    if (-not $outcome.Passed) {
        $failed += $check
    }
}

$module.Result.preflight = $results
$module.Result.passed = $failed.Count -eq 0
$module.Result.failed_checks = $failed

$failedRequired = @($require | Where-Object { $failed -contains $_ })
if ($failedRequired.Count -gt 0) {
    $details = @($failedRequired | ForEach-Object { '{0}: {1}' -f $_, $observed[$_] }) -join '; '
    $module.FailJson("required preflight check(s) failed: $details")
}
$module.ExitJson()
