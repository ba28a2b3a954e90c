#!powershell

# Copyright: (c) 2025, Depot developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.depot.software.plugins.module_utils._DepotWin

# The Windows executor of depot.software.package (documentation: package.py, contract:
# docs/module-contract.md). One call is one attempt: detection, then the installer or uninstaller,
# then detection again. Classifying the exit code, retrying and rebooting is the action plugin's job.
#
# run_as system runs the installer as this module's own identity: playbooks connect with
# become: true, become_method: runas, become_user: SYSTEM, as installers expect LocalSystem.

$spec = @{
    options = @{
        name = @{ type = 'str'; required = $true }
        state = @{ type = 'str'; default = 'present'; choices = @('present', 'absent') }
        installer_type = @{
            type = 'str'
            required = $true
            choices = @('msi', 'msix', 'exe', 'msp', 'choco', 'winget')
        }
        product_id = @{ type = 'str' }
        version = @{ type = 'str' }
        src = @{ type = 'str' }
        checksum = @{ type = 'str' }
        cache_dir = @{ type = 'path' }
        arguments = @{ type = 'list'; elements = 'str'; default = @() }
        install_command = @{ type = 'raw' }
        uninstall_command = @{ type = 'raw' }
    }
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @(Get-DepotCommonSpec))

# Installs or removes an MSIX package in a separate powershell.exe, so that it gets the same run-as,
# timeout and exit code handling as any installer. Arguments: install|uninstall <path|family name>
# machine|user. Deployment errors are HRESULTs (0x80073CF9); FACILITY_WIN32 ones are reported as the
# Win32 code (15609) that exit-code classes use.
$msixHelper = @'
$ErrorActionPreference = 'Stop'
$action = $args[0]
$target = $args[1]
$scope = $args[2]
try {
    if ($action -eq 'install') {
        if ($scope -eq 'machine') {
            # Provisioned: registered for every user at their next logon, new users included.
            $null = Add-AppxProvisionedPackage -Online -PackagePath $target -SkipLicense
        }
        else {
            Add-AppxPackage -Path $target
        }
    }
    else {
        if ($scope -eq 'machine') {
            foreach ($package in @(Get-AppxProvisionedPackage -Online)) {
                if (('{0}_{1}' -f $package.DisplayName, $package.PublisherId) -eq $target) {
                    $null = Remove-AppxProvisionedPackage -Online -PackageName $package.PackageName
                }
            }
            foreach ($package in @(Get-AppxPackage -AllUsers | Where-Object { $_.PackageFamilyName -eq $target })) {
                Remove-AppxPackage -Package $package.PackageFullName -AllUsers
            }
        }
        else {
            foreach ($package in @(Get-AppxPackage | Where-Object { $_.PackageFamilyName -eq $target })) {
                Remove-AppxPackage -Package $package.PackageFullName
            }
        }
    }
}
catch {
    [Console]::Error.WriteLine(($_ | Out-String))
    $hresult = $_.Exception.HResult
    if (($hresult -band 0xFFFF0000) -eq 0x80070000) {
        exit ($hresult -band 0xFFFF)
    }
    exit $hresult
}
exit 0
'@

Function Get-DefaultDetection {
    <#
    .SYNOPSIS
    The detection rule derived from installer_type and product_id when no detection is given.
    #>
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param (
        [Parameter(Mandatory = $true)]
        [Object]
        $Module
    )

    $params = $Module.Params
    $type = $params.installer_type
    switch ($type) {
        'msi' {
            if (-not $params.product_id) {
                $Module.FailJson('product_id (the MSI product code) or detection is required for installer_type msi')
            }
            $rule = @{ type = 'msi'; product_code = $params.product_id; version = $params.version }
        }
        'msix' {
            if (-not $params.product_id) {
                $Module.FailJson('product_id (the package family name) or detection is required for installer_type msix')
            }
            $rule = @{ type = 'msix'; name = $params.product_id; version = $params.version }
        }
        { $_ -in @('choco', 'winget') } {
            $id = $params.product_id
            if (-not $id) {
                $id = $params.name
            }
            $rule = @{ type = $type; name = $id; version = $params.version }
        }
        default {
            $Module.FailJson("detection is required for installer_type $type")
        }
    }
    @{ match = 'all'; rules = @($rule) }
}

Function Get-PackageArgv {
    <#
    .SYNOPSIS
    The argv of this attempt. '{installer}' stands for the installer's path until the content is fetched.
    #>
    [CmdletBinding()]
    [OutputType([String[]])]
    param (
        [Parameter(Mandatory = $true)]
        [Object]
        $Module,

        [AllowNull()]
        [String]
        $LogPath,

        [Parameter(Mandatory = $true)]
        [String]
        $RunDirectory,

        [Parameter(Mandatory = $true)]
        [String]
        $Context
    )

    $params = $Module.Params
    $present = $params.state -eq 'present'
    $commandOption = if ($present) { 'install_command' } else { 'uninstall_command' }
    $command = $params[$commandOption]

    if ($null -ne $command) {
        try {
            $argv = @(ConvertTo-DepotArgv -Command $command -OptionName $commandOption)
        }
        catch {
            $Module.FailJson($_.Exception.Message, $_)
        }
    }
    else {
        $type = $params.installer_type
        $id = $params.product_id
        if (-not $id -and $type -in @('choco', 'winget')) {
            $id = $params.name
        }
        $msiexec = Join-Path -Path $env:SystemRoot -ChildPath 'System32\msiexec.exe'
        $msiOptions = @('/qn', '/norestart', '/L*v', $LogPath)

        switch ($type) {
            'exe' {
                $Module.FailJson("$commandOption is required for installer_type exe")
            }
            'msi' {
                if ($present) {
                    $argv = @($msiexec, '/i', '{installer}') + $msiOptions
                }
                elseif ($id) {
                    $argv = @($msiexec, '/x', $id) + $msiOptions
                }
                else {
                    # msiexec /x also accepts the package itself.
                    $argv = @($msiexec, '/x', '{installer}') + $msiOptions
                }
            }
            'msp' {
                if ($present) {
                    $argv = @($msiexec, '/p', '{installer}') + $msiOptions
                }
                elseif ($id) {
                    # Removing a patch needs the product it patches.
                    $argv = @($msiexec, '/uninstall', '{installer}', '/package', $id) + $msiOptions
                }
                else {
                    $Module.FailJson('product_id (the product code the patch applies to) or uninstall_command is required to remove an msp')
                }
            }
            'msix' {
                $helper = Join-Path -Path $RunDirectory -ChildPath 'msix.ps1'
                Write-DepotScriptFile -Path $helper -Text $msixHelper
                $scope = if ($Context -eq 'system') { 'machine' } else { 'user' }
                $target = '{installer}'
                if (-not $present) {
                    if (-not $id) {
                        $Module.FailJson('product_id (the package family name) or uninstall_command is required to remove an msix')
                    }
                    $target = $id
                }
                $powershell = Join-Path -Path $env:SystemRoot -ChildPath 'System32\WindowsPowerShell\v1.0\powershell.exe'
                $argv = @($powershell, '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File',
                    $helper, $(if ($present) { 'install' } else { 'uninstall' }), $target, $scope)
            }
            'choco' {
                $choco = Get-DepotChocoPath
                if (-not $choco) {
                    $Module.FailJson('installer_type choco: Chocolatey (choco.exe) is not installed on this host')
                }
                if ($present) {
                    $argv = @($choco, 'install', $id, '--yes', '--no-progress')
                    if ($params.version) {
                        # Installing a given version over an older one upgrades it.
                        $argv += @('--version', $params.version)
                    }
                }
                else {
                    $argv = @($choco, 'uninstall', $id, '--yes', '--no-progress')
                }
            }
            'winget' {
                $winget = Get-DepotWingetPath
                if (-not $winget) {
                    $Module.FailJson('installer_type winget: winget.exe (App Installer) is not installed on this host')
                }
                if ($present) {
                    $argv = @($winget, 'install', '--id', $id, '--exact', '--silent',
                        '--accept-package-agreements', '--accept-source-agreements')
                    if ($params.version) {
                        $argv += @('--version', $params.version)
                    }
                }
                else {
                    $argv = @($winget, 'uninstall', '--id', $id, '--exact', '--silent', '--accept-source-agreements')
                }
            }
        }
    }

    , [String[]]($argv + @($params.arguments))
}

$params = $module.Params
$present = $params.state -eq 'present'
Initialize-DepotResult -Module $module -Context $params.run_as

$cacheDirectory = $params.cache_dir
if (-not $cacheDirectory) {
    $cacheDirectory = Join-Path -Path $env:ProgramData -ChildPath 'Depot\cache'
}
$environment = @{}
if ($params.environment) {
    foreach ($entry in $params.environment.GetEnumerator()) {
        $environment[[String]$entry.Key] = [String]$entry.Value
    }
}
$secrets = @($environment.Values) + @($params.run_as_password)

# Input checks; each message names the option.
if ($params.timeout -lt 0) {
    $module.FailJson("timeout must be 0 or more, got $($params.timeout)")
}
if ($params.checksum -and $params.checksum -notmatch '^[0-9A-Fa-f]{64}$') {
    $module.FailJson('checksum must be a sha256 digest (64 hexadecimal digits)')
}
if ($params.src) {
    if ($params.src -match '^https?://') {
        if (-not $params.checksum) {
            $module.FailJson('checksum is required when src is an http(s) URL')
        }
    }
    elseif ($params.src -match '^[A-Za-z][A-Za-z0-9+.-]+://') {
        $module.FailJson('src must be an http(s) URL or an absolute path on the host')
    }
    elseif (-not [IO.Path]::IsPathRooted($params.src)) {
        $module.FailJson("src must be an http(s) URL or an absolute path on the host, got '$($params.src)'")
    }
}

$detection = $params.detection
if (-not $detection) {
    $detection = Get-DefaultDetection -Module $module
}

$runAs = Resolve-DepotRunAs -Module $module

try {
    $detectedBefore = Test-DepotDetection -Detection $detection -UserSid $runAs.UserSid
}
catch {
    $module.FailJson($_.Exception.Message, $_)
}
$module.Result.detected_before = $detectedBefore

if ($detectedBefore -eq $present) {
    $module.Result.status = 'satisfied'
    $module.ExitJson()
}
if ($params.detect_only -or $module.CheckMode) {
    $module.Result.status = 'would_change'
    $module.Result.changed = -not $params.detect_only
    $module.ExitJson()
}
if ($runAs.NoSession) {
    $module.Result.status = 'no_user_session'
    $module.Result.msg = 'run_as logged_in_user: no user is logged on'
    $module.ExitJson()
}

$runDirectory = $null
$contentLock = $null
try {
    $runDirectory = New-DepotRunDirectory -AccountSid $runAs.UserSid

    # The default MSI log is under the cache, one per package, overwritten by each attempt.
    $logPath = $params.log_path
    $usesDefaultMsiCommand = $params.installer_type -in @('msi', 'msp') -and
    $null -eq $(if ($present) { $params.install_command } else { $params.uninstall_command })
    if (-not $logPath -and $usesDefaultMsiCommand) {
        $logDirectory = Join-Path -Path $cacheDirectory -ChildPath 'logs'
        Initialize-DepotDirectory -Path $logDirectory
        $logPath = Join-Path -Path $logDirectory -ChildPath ('{0}.log' -f ($params.name -replace '[^\w.-]', '_'))
        if (Test-Path -LiteralPath $logPath) {
            Remove-Item -LiteralPath $logPath -Force
        }
    }

    $argv = Get-PackageArgv -Module $module -LogPath $logPath -RunDirectory $runDirectory -Context $runAs.Context

    # Content is fetched only now that detection says the installer must run, and verified before it runs.
    $workingDirectory = $runDirectory
    if (@($argv | Where-Object { $_.Contains('{installer}') }).Count -gt 0) {
        if (-not $params.src) {
            $module.FailJson('src is required: the command uses {installer}')
        }
        try {
            $fetched = Get-DepotContent -Source $params.src -Checksum $params.checksum -CacheDirectory $cacheDirectory
        }
        catch {
            $module.FailJson($_.Exception.Message, $_)
        }
        # Held open (read-only sharing) until the installer has run: the verified file is the one that runs.
        $contentLock = $fetched.Lock
        $installer = $fetched.Content.path
        $module.Result.content = $fetched.Content
        $argv = @($argv | ForEach-Object { $_.Replace('{installer}', $installer) })
        $workingDirectory = [IO.Path]::GetDirectoryName($installer)
    }

    # A command of another account must be able to write its log.
    if ($logPath -and $runAs.UserSid) {
        Grant-DepotFileAccess -Path $logPath -AccountSid $runAs.UserSid
    }
    $logOffset = Get-DepotLogOffset -Path $logPath

    # Windows Installer runs one installation at a time; a second one would fail with 1618 anyway.
    if ($usesDefaultMsiCommand -or [IO.Path]::GetFileNameWithoutExtension($argv[0]) -eq 'msiexec') {
        $busy = Test-DepotInstallerBusy
        if ($busy.value) {
            $module.Result.status = 'busy'
            $module.Result.rc = 1618
            $who = 'another process'
            if ($busy.holder.pid) {
                $who = 'pid {0} ({1})' -f $busy.holder.pid, $busy.holder.name
            }
            $module.Result.msg = 'installer busy: {0} is held by {1}' -f $busy.holder.lock, $who
            $module.ExitJson()
        }
    }

    $commandParams = @{
        Argv = $argv
        Context = $runAs.Context
        UserName = $runAs.UserName
        Password = $params.run_as_password
        LogonType = $params.run_as_logon_type
        RunDirectory = $runDirectory
        WorkingDirectory = $workingDirectory
        Environment = $environment
        Timeout = $params.timeout
    }
    try {
        $run = Invoke-DepotCommand @commandParams
    }
    catch {
        $module.Result.cmd = @($argv | ForEach-Object { Protect-DepotText -Text $_ -Secret $secrets })
        $module.FailJson("could not run the $($params.installer_type) installer: $(Protect-DepotText -Text $_.Exception.Message -Secret $secrets)", $_)
    }

    if ($run.NoSession) {
        $module.Result.status = 'no_user_session'
        $module.Result.msg = "run_as logged_in_user: $($runAs.UserName) logged off before the installer started"
        $module.ExitJson()
    }
    Set-DepotRunResult -Module $module -Run $run -TailLines $params.tail_lines -Secret $secrets -LogPath $logPath `
        -LogOffset $logOffset
    if ($run.TimedOut) {
        $module.Result.msg = "the installer was killed with its process tree after the timeout of $($params.timeout) seconds"
    }
}
finally {
    if ($contentLock) {
        $contentLock.Dispose()
    }
    Remove-DepotRunDirectory -Path $runDirectory
}

try {
    $module.Result.detected_after = Test-DepotDetection -Detection $detection -UserSid $runAs.UserSid
}
catch {
    $module.FailJson($_.Exception.Message, $_)
}
$module.ExitJson()
