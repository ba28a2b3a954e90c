# Copyright: (c) 2025, Depot developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# Shared helpers of the Windows executors of depot.software (package, script, preflight, software_facts).
# The contract they implement is docs/module-contract.md; this module holds what more than one executor
# needs: the option spec fragment, argv quoting, running a command in a run-as context with a timeout,
# content download into the hash-addressed cache, detection rules and result formatting.

#AnsibleRequires -CSharpUtil ._DepotWinNative

# Exit codes and Task Scheduler states that have a meaning here.
$script:SCHED_S_TASK_RUNNING = 0x00041301
$script:SCHED_S_TASK_HAS_NOT_RUN = 0x00041303
# msi.dll INSTALLSTATE_DEFAULT: the product is installed for the machine or the calling user.
$script:INSTALLSTATE_DEFAULT = 5
# winget's APPINSTALLER_CLI_ERROR_NO_APPLICATIONS_FOUND (0x8A150014) as a signed exit code.
$script:WINGET_NO_APPLICATIONS_FOUND = -1978335212
# Detection scripts and package-manager queries are bounded, so a hung check cannot hang the module.
$script:DETECTION_TIMEOUT = 300
$script:MASK = '********'
$script:ChocoMajorVersion = $null

$script:PowerShellPath = Join-Path -Path $env:SystemRoot -ChildPath 'System32\WindowsPowerShell\v1.0\powershell.exe'
$script:DefaultScriptInterpreter = @(
    $script:PowerShellPath, '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File'
)

Function Get-DepotCommonSpec {
    <#
    .SYNOPSIS
    The option spec fragment shared by the package and script modules (run-as, timeout, detection, output).
    #>
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param ()

    @{
        options = @{
            detection = @{
                type = 'dict'
                options = @{
                    match = @{ type = 'str'; default = 'all'; choices = @('all', 'any') }
                    rules = @{
                        type = 'list'
                        elements = 'dict'
                        required = $true
                        options = @{
                            # The type is checked by Assert-DepotDetection so the message can name the rule.
                            type = @{ type = 'str'; required = $true }
                            path = @{ type = 'str' }
                            version = @{ type = 'str' }
                            name = @{ type = 'str' }
                            product_code = @{ type = 'str' }
                            key = @{ type = 'str' }
                            value = @{ type = 'str' }
                            data = @{ type = 'raw' }
                            script = @{ type = 'str' }
                            interpreter = @{ type = 'list'; elements = 'str' }
                        }
                    }
                }
            }
            run_as = @{ type = 'str'; default = 'system'; choices = @('system', 'logged_in_user', 'user') }
            run_as_user = @{ type = 'str' }
            run_as_password = @{ type = 'str'; no_log = $true }
            # Windows only: how run_as user logs on. new_credentials is runas /netonly
            # (LOGON_NETCREDENTIALS_ONLY): local identity unchanged, run_as_user's credentials for shares.
            run_as_logon_type = @{
                type = 'str'
                default = 'interactive'
                choices = @('interactive', 'batch', 'network_cleartext', 'new_credentials')
            }
            timeout = @{ type = 'int'; default = 3600 }
            tail_lines = @{ type = 'int'; default = 40 }
            # Sent by the action plugin when it only needs to know the state (after a reboot, for instance).
            detect_only = @{ type = 'bool'; default = $false }
            log_path = @{ type = 'path' }
            environment = @{ type = 'dict'; default = @{}; no_log = $true }
        }
        required_if = @(
            , @('run_as', 'user', @('run_as_user', 'run_as_password'))
        )
    }
}

Function Initialize-DepotResult {
    <#
    .SYNOPSIS
    Sets every key of the contract's return so each exit path returns the same shape.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Object]
        $Module,

        [Parameter(Mandatory = $true)]
        [String]
        $Context
    )

    $result = $Module.Result
    $result.status = $null
    $result.rc = $null
    $result.detected_before = $null
    $result.detected_after = $null
    $result.changed = $false
    $result.cmd = @()
    $result.duration = 0.0
    $result.stdout_tail = @()
    $result.stderr_tail = @()
    $result.log_tail = @()
    $result.content = $null
    $result.boot_id = Get-DepotBootId
    $result.run_as = @{ context = $Context; user = $null }
}

Function Get-DepotBootId {
    <#
    .SYNOPSIS
    The last boot time as a FILETIME string: the same value as ansible.windows.win_reboot's default
    boot_time_command, so the controller can compare either.
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param ()

    try {
        $os = Get-CimInstance -ClassName Win32_OperatingSystem -Property LastBootUpTime -ErrorAction Stop
        [String]$os.LastBootUpTime.ToFileTime()
    }
    catch {
        $null
    }
}

Function ConvertTo-DepotInt32 {
    <#
    .SYNOPSIS
    Normalises an exit code to a signed 32-bit integer.

    .DESCRIPTION
    Exit codes are DWORDs; Task Scheduler and CIM report them unsigned, processes see them signed.
    3221225477 and -1073741819 are the same code (0xC0000005).
    #>
    [CmdletBinding()]
    [OutputType([Int32])]
    param (
        [Parameter(Mandatory = $true)]
        [Object]
        $Value
    )

    $number = [Int64]$Value
    if ($number -gt [Int32]::MaxValue) {
        $number -= 4294967296
    }
    [Int32]$number
}

Function ConvertTo-DepotArgument {
    <#
    .SYNOPSIS
    Quotes one argv item so CommandLineToArgvW (and the Microsoft C runtime) parse it back unchanged.

    .DESCRIPTION
    The only quoting function of the collection. Windows passes one command line string to a new
    process, and the process splits it again: spaces and tabs separate items, a double quote toggles
    quoting, and backslashes are literal except in front of a double quote, where 2n backslashes become
    n and 2n+1 backslashes become n plus a literal quote.
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [Parameter(Mandatory = $true, ValueFromPipeline = $true)]
        [AllowEmptyString()]
        [AllowNull()]
        [String]
        $InputObject
    )

    process {
        if ([String]::IsNullOrEmpty($InputObject)) {
            '""'
        }
        elseif ($InputObject -notmatch '[\s"]') {
            $InputObject
        }
        else {
            # Double the backslashes in front of each quote and escape the quote itself ...
            $escaped = $InputObject -replace '(\\*)"', '$1$1\"'
            # ... and double trailing backslashes, which will stand in front of the closing quote.
            $escaped = $escaped -replace '(\\+)\z', '$1$1'
            '"' + $escaped + '"'
        }
    }
}

Function Format-DepotArgumentList {
    <#
    .SYNOPSIS
    Quotes the arguments (argv[1..]) of a program into the text following the program on its command line.
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Program,

        [AllowEmptyCollection()]
        [String[]]
        $ArgumentList = @()
    )

    # msiexec does not split its command line with CommandLineToArgvW: a property is written
    # PROP="a b" (quotes after the '=', inner quotes doubled); "PROP=a b" as one quoted item is rejected.
    $isMsiexec = [IO.Path]::GetFileNameWithoutExtension($Program) -eq 'msiexec'

    $parts = foreach ($argument in $ArgumentList) {
        $propertyName = $null
        $propertyValue = $null
        if ($isMsiexec -and $argument -match '^([A-Za-z_][A-Za-z0-9_.]*)=(.*)$') {
            $propertyName = $Matches[1]
            $propertyValue = $Matches[2]
        }

        if ($null -ne $propertyName -and ($propertyValue -eq '' -or $propertyValue -match '[\s"]')) {
            '{0}="{1}"' -f $propertyName, ($propertyValue -replace '"', '""')
        }
        else {
            ConvertTo-DepotArgument -InputObject $argument
        }
    }
    @($parts) -join ' '
}

Function ConvertTo-DepotCommandLine {
    <#
    .SYNOPSIS
    Joins an argv list into one Windows command line.
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [Parameter(Mandatory = $true)]
        [String[]]
        $Argv
    )

    $commandLine = ConvertTo-DepotArgument -InputObject $Argv[0]
    $arguments = Format-DepotArgumentList -Program $Argv[0] -ArgumentList @($Argv | Select-Object -Skip 1)
    if ($arguments) {
        $commandLine += ' ' + $arguments
    }
    $commandLine
}

Function ConvertTo-DepotArgv {
    <#
    .SYNOPSIS
    Turns a command option (list of argv items, or one string split with CommandLineToArgvW rules) into argv.
    #>
    [CmdletBinding()]
    [OutputType([String[]])]
    param (
        [Parameter(Mandatory = $true)]
        [Object]
        $Command,

        [Parameter(Mandatory = $true)]
        [String]
        $OptionName
    )

    if ($Command -is [String]) {
        $argv = @([Depot.Win.CommandLine]::Split($Command))
    }
    elseif ($Command -is [System.Collections.IList]) {
        $argv = @(foreach ($item in $Command) { [String]$item })
    }
    else {
        throw "$OptionName must be a list of arguments or a command line string"
    }

    if ($argv.Count -eq 0 -or -not $argv[0]) {
        throw "$OptionName must not be empty"
    }
    , [String[]]$argv
}

Function Resolve-DepotExecutable {
    <#
    .SYNOPSIS
    Finds the full path of argv[0] the way a user would expect (environment variables, PATH, .exe).
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Name
    )

    $expanded = [Environment]::ExpandEnvironmentVariables($Name)
    if ([IO.Path]::IsPathRooted($expanded)) {
        return $expanded
    }

    $candidates = @($expanded)
    if (-not [IO.Path]::HasExtension($expanded)) {
        $candidates += "$expanded.exe"
    }
    foreach ($candidate in $candidates) {
        $command = Get-Command -Name $candidate -CommandType Application -ErrorAction SilentlyContinue |
            Select-Object -First 1
        if ($command) {
            return $command.Path
        }
    }
    $expanded
}

Function Protect-DepotText {
    <#
    .SYNOPSIS
    Replaces every secret value in a text with ********.
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [String]
        $Text,

        [AllowNull()]
        [AllowEmptyCollection()]
        [String[]]
        $Secret
    )

    if (-not $Text -or -not $Secret) {
        return $Text
    }
    # Longest first, so a secret containing another one is masked whole.
    foreach ($value in @($Secret | Where-Object { $_ } | Sort-Object -Property Length -Descending)) {
        $Text = $Text.Replace($value, $script:MASK)
    }
    $Text
}

Function Get-DepotTail {
    <#
    .SYNOPSIS
    The last lines of a text, with secrets masked.
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [String]
        $Text,

        [Int32]
        $Count = 40,

        [AllowNull()]
        [AllowEmptyCollection()]
        [String[]]
        $Secret
    )

    if (-not $Text -or $Count -le 0) {
        return
    }
    # Mask before splitting: a secret may span lines.
    $lines = @((Protect-DepotText -Text $Text -Secret $Secret) -split '\r?\n')

    $last = $lines.Count - 1
    while ($last -ge 0 -and -not $lines[$last].Trim()) {
        $last--
    }
    if ($last -lt 0) {
        return
    }
    $first = [Math]::Max(0, $last - $Count + 1)
    foreach ($line in $lines[$first..$last]) {
        # Progress bars (choco, winget) redraw one line with bare carriage returns: keep the final drawing.
        $line = $line.TrimEnd("`r")
        $line.Substring($line.LastIndexOf("`r") + 1)
    }
}

Function Get-DepotFileTail {
    <#
    .SYNOPSIS
    The last lines of a log file written from Offset on, read without locking out its writer.
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Path,

        [Int32]
        $Count = 40,

        [Int64]
        $Offset = 0,

        [AllowNull()]
        [AllowEmptyCollection()]
        [String[]]
        $Secret
    )

    # Verbose MSI logs run to tens of megabytes; only their end is reported.
    $maxBytes = 4194304

    $stream = [IO.File]::Open($Path, 'Open', 'Read', 'ReadWrite, Delete')
    try {
        # Windows Installer writes UTF-16LE logs with a byte-order mark; other logs are usually ANSI.
        $bom = New-Object -TypeName Byte[] -ArgumentList 3
        $read = $stream.Read($bom, 0, 3)
        $encoding = [Text.Encoding]::Default
        $bomLength = 0
        $unitSize = 1
        if ($read -ge 2 -and $bom[0] -eq 0xFF -and $bom[1] -eq 0xFE) {
            $encoding = [Text.Encoding]::Unicode
            $bomLength = 2
            $unitSize = 2
        }
        elseif ($read -ge 2 -and $bom[0] -eq 0xFE -and $bom[1] -eq 0xFF) {
            $encoding = [Text.Encoding]::BigEndianUnicode
            $bomLength = 2
            $unitSize = 2
        }
        elseif ($read -ge 3 -and $bom[0] -eq 0xEF -and $bom[1] -eq 0xBB -and $bom[2] -eq 0xBF) {
            $encoding = [Text.Encoding]::UTF8
            $bomLength = 3
        }

        # A log shorter than where we started is a new log: read it from its start.
        if ($Offset -gt $stream.Length) {
            $Offset = 0
        }
        $start = [Math]::Max([Math]::Max($Offset, $bomLength), $stream.Length - $maxBytes)
        # Never start in the middle of a UTF-16 code unit.
        $start -= ($start - $bomLength) % $unitSize
        $stream.Position = $start

        $reader = New-Object -TypeName IO.StreamReader -ArgumentList $stream, $encoding, $false
        $text = $reader.ReadToEnd()
        if ($start -gt [Math]::Max($Offset, $bomLength)) {
            # We cut into the file: drop the partial first line.
            $text = $text.Substring($text.IndexOf("`n") + 1)
        }
    }
    finally {
        $stream.Dispose()
    }

    Get-DepotTail -Text $text -Count $Count -Secret $Secret
}

Function Compare-DepotVersion {
    <#
    .SYNOPSIS
    Compares two version strings: -1, 0 or 1.

    .DESCRIPTION
    Dotted parts compare numerically ("10.0" > "9.5"); non-numeric parts ("1.2.0-beta") compare as text.
    Missing parts count as 0, so "1.2" equals "1.2.0.0".
    #>
    [CmdletBinding()]
    [OutputType([Int32])]
    param (
        [AllowEmptyString()]
        [String]
        $Left,

        [AllowEmptyString()]
        [String]
        $Right
    )

    $leftParts = @("$Left".Trim() -split '[.\-+_ ]')
    $rightParts = @("$Right".Trim() -split '[.\-+_ ]')
    $count = [Math]::Max($leftParts.Count, $rightParts.Count)
    for ($i = 0; $i -lt $count; $i++) {
        $a = if ($i -lt $leftParts.Count -and $leftParts[$i]) { $leftParts[$i] } else { '0' }
        $b = if ($i -lt $rightParts.Count -and $rightParts[$i]) { $rightParts[$i] } else { '0' }
        $aNumber = [Int64]0
        $bNumber = [Int64]0
        if ([Int64]::TryParse($a, [ref]$aNumber) -and [Int64]::TryParse($b, [ref]$bNumber)) {
            if ($aNumber -ne $bNumber) {
                return [Math]::Sign($aNumber - $bNumber)
            }
        }
        else {
            $textOrder = [String]::Compare($a, $b, [StringComparison]::OrdinalIgnoreCase)
            if ($textOrder -ne 0) {
                return [Math]::Sign($textOrder)
            }
        }
    }
    0
}

Function Test-DepotVersion {
    <#
    .SYNOPSIS
    True when Actual is at least Minimum (always true without a Minimum).
    #>
    [CmdletBinding()]
    [OutputType([Boolean])]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [String]
        $Actual,

        [AllowNull()]
        [AllowEmptyString()]
        [String]
        $Minimum
    )

    if (-not $Minimum) {
        return $true
    }
    if (-not $Actual) {
        return $false
    }
    (Compare-DepotVersion -Left $Actual -Right $Minimum) -ge 0
}

Function Test-DepotInstallerBusy {
    <#
    .SYNOPSIS
    Whether Windows Installer is running an installation (the Global\_MSIExecute mutex is held).

    .OUTPUTS
    @{ value = bool; holder = $null or @{ pid; name; lock } } (pid and name of the msiexec client if found)
    #>
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param ()

    $busy = $false
    $mutex = $null
    try {
        $rights = [System.Security.AccessControl.MutexRights]::Synchronize
        if ([System.Threading.Mutex]::TryOpenExisting('Global\_MSIExecute', $rights, [ref]$mutex)) {
            try {
                # The mutex object can outlive the installation that created it; it is busy only while
                # someone owns it. Owning it for an instant (and releasing it at once) is the usual test.
                try {
                    $acquired = $mutex.WaitOne(0)
                }
                catch [System.Threading.AbandonedMutexException] {
                    # Its owner died: we own it now, and nothing is installing.
                    $acquired = $true
                }
                if ($acquired) {
                    $mutex.ReleaseMutex()
                }
                else {
                    $busy = $true
                }
            }
            finally {
                $mutex.Dispose()
            }
        }
    }
    catch [System.UnauthorizedAccessException] {
        # It exists and we may not even wait on it: an installation holds it.
        $busy = $true
    }

    $holder = $null
    if ($busy) {
        $holder = @{ pid = $null; name = $null; lock = 'Global\_MSIExecute' }
        # msiexec.exe /V is the Windows Installer service itself; a client msiexec is the installation.
        $client = Get-CimInstance -ClassName Win32_Process -Filter "Name = 'msiexec.exe'" -ErrorAction SilentlyContinue |
            Where-Object { $_.CommandLine -and $_.CommandLine -notmatch '\s/V\s*$' } |
            Select-Object -First 1
        if ($client) {
            $holder.pid = [Int32]$client.ProcessId
            $holder.name = $client.Name
        }
    }
    @{ value = $busy; holder = $holder }
}

Function Get-DepotSession {
    <#
    .SYNOPSIS
    Sessions with a logged-on user: SessionId, StationName, State (Active, Disconnected, ...), UserName,
    ClientAddress (Remote Desktop client), LogonTime (UTC).
    #>
    [CmdletBinding()]
    param ()

    $sessions = $null
    try {
        $sessions = [Depot.Win.Sessions]::GetSessions()
    }
    catch {
        # Remote Desktop Services APIs unavailable (Server Core without the service running): every
        # interactive logon runs an explorer.exe, so its owners are the logged-on users.
        foreach ($process in @(Get-CimInstance -ClassName Win32_Process -Filter "Name = 'explorer.exe'")) {
            $owner = Invoke-CimMethod -InputObject $process -MethodName GetOwner
            if ($owner.ReturnValue -eq 0) {
                [PSCustomObject]@{
                    SessionId = [Int32]$process.SessionId
                    StationName = $null
                    State = 'Active'
                    UserName = '{0}\{1}' -f $owner.Domain, $owner.User
                    ClientAddress = $null
                    LogonTime = $null
                }
            }
        }
        return
    }

    foreach ($session in $sessions) {
        if (-not $session.UserName) {
            continue
        }
        $userName = $session.UserName
        if ($session.Domain) {
            $userName = '{0}\{1}' -f $session.Domain, $session.UserName
        }
        [PSCustomObject]@{
            SessionId = $session.SessionId
            StationName = $session.StationName
            State = $session.State
            UserName = $userName
            ClientAddress = $session.ClientAddress
            LogonTime = $session.LogonTime
        }
    }
}

Function Get-DepotInteractiveUser {
    <#
    .SYNOPSIS
    The session whose user counts as "the logged-in user", or $null when nobody is logged on.

    .DESCRIPTION
    An active session wins over a disconnected one (whose user is still logged on, and where a scheduled
    task still runs), and the console wins over Remote Desktop sessions.
    #>
    [CmdletBinding()]
    param ()

    $sessions = @(Get-DepotSession)
    foreach ($state in @('Active', 'Disconnected')) {
        $candidates = @($sessions | Where-Object { $_.State -eq $state })
        $console = @($candidates | Where-Object { $_.StationName -eq 'Console' })
        if ($console.Count -gt 0) {
            return $console[0]
        }
        if ($candidates.Count -gt 0) {
            return $candidates[0]
        }
    }
    $null
}

Function Resolve-DepotAccount {
    <#
    .SYNOPSIS
    The SID of an account name (DOMAIN\user, .\user, user@domain or user); throws for unknown accounts.
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Name
    )

    $lookup = $Name
    if ($lookup.StartsWith('.\')) {
        $lookup = '{0}\{1}' -f $env:COMPUTERNAME, $lookup.Substring(2)
    }
    $account = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $lookup
    $account.Translate([System.Security.Principal.SecurityIdentifier]).Value
}

Function Set-DepotDirectoryAcl {
    <#
    .SYNOPSIS
    Gives a directory tree a protected ACL: full control for SYSTEM and Administrators, and for the listed
    accounts; read for Users when asked.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Path,

        [AllowEmptyCollection()]
        [String[]]
        $FullControlSid = @(),

        [Switch]
        $UsersRead
    )

    $acl = New-Object -TypeName System.Security.AccessControl.DirectorySecurity
    $acl.SetAccessRuleProtection($true, $false)
    $grants = @(
        @{ Sid = 'S-1-5-18'; Rights = 'FullControl' },
        @{ Sid = 'S-1-5-32-544'; Rights = 'FullControl' }
    )
    foreach ($sid in $FullControlSid) {
        if ($sid) {
            $grants += @{ Sid = $sid; Rights = 'FullControl' }
        }
    }
    if ($UsersRead) {
        $grants += @{ Sid = 'S-1-5-32-545'; Rights = 'ReadAndExecute' }
    }
    foreach ($grant in $grants) {
        $identity = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList $grant.Sid
        $rule = New-Object -TypeName System.Security.AccessControl.FileSystemAccessRule -ArgumentList @(
            $identity, $grant.Rights, 'ContainerInherit, ObjectInherit', 'None', 'Allow'
        )
        $acl.AddAccessRule($rule)
    }
    Set-Acl -LiteralPath $Path -AclObject $acl
}

Function Initialize-DepotDirectory {
    <#
    .SYNOPSIS
    Creates a directory of ours (cache, logs, run) so that only SYSTEM and Administrators can write to it.

    .DESCRIPTION
    Installers verified here run as SYSTEM. %ProgramData% lets every user create folders, so a user who
    created Depot\cache\... first could swap a verified installer before it runs. %ProgramData%\Depot and
    any directory we create get a protected ACL (Users may read: user run-as contexts read installers).
    An existing directory given as cache_dir is left as its owner set it up.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Path
    )

    $depotRoot = Join-Path -Path $env:ProgramData -ChildPath 'Depot'
    if (-not (Test-Path -LiteralPath $depotRoot)) {
        $null = New-Item -Path $depotRoot -ItemType Directory -Force
    }
    if (-not (Get-Acl -LiteralPath $depotRoot).AreAccessRulesProtected) {
        Set-DepotDirectoryAcl -Path $depotRoot -UsersRead
    }

    if (-not (Test-Path -LiteralPath $Path)) {
        $null = New-Item -Path $Path -ItemType Directory -Force
        Set-DepotDirectoryAcl -Path $Path -UsersRead
    }
}

Function New-DepotRunDirectory {
    <#
    .SYNOPSIS
    Creates a private working directory for one attempt under %ProgramData%\Depot\run.

    .DESCRIPTION
    Scripts, the scheduled-task launcher and its spec (which may carry environment values) live here.
    Inheritance is cut: only SYSTEM, Administrators and the account the command runs as have access.
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [String]
        $AccountSid
    )

    $root = Join-Path -Path $env:ProgramData -ChildPath 'Depot\run'
    Initialize-DepotDirectory -Path $root
    $path = Join-Path -Path $root -ChildPath ([Guid]::NewGuid().ToString('N'))
    $null = New-Item -Path $path -ItemType Directory -Force
    Set-DepotDirectoryAcl -Path $path -FullControlSid @($AccountSid)
    $path
}

Function Remove-DepotRunDirectory {
    [CmdletBinding()]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [String]
        $Path
    )

    if ($Path -and (Test-Path -LiteralPath $Path)) {
        # A process the command left running may still hold a file; that must not fail the attempt.
        Remove-Item -LiteralPath $Path -Recurse -Force -ErrorAction SilentlyContinue
    }
}

Function Grant-DepotFileAccess {
    <#
    .SYNOPSIS
    Lets an account modify one file (an installer log written by a command that runs as that account).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Path,

        [Parameter(Mandatory = $true)]
        [String]
        $AccountSid
    )

    if (-not (Test-Path -LiteralPath $Path)) {
        $null = New-Item -Path $Path -ItemType File -Force
    }
    $identity = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList $AccountSid
    $rule = New-Object -TypeName System.Security.AccessControl.FileSystemAccessRule -ArgumentList @(
        $identity, 'Modify', 'Allow'
    )
    # A new security object holds only this rule: Set-Acl writes it as the explicit part of the DACL and
    # keeps the inherited entries, and leaves the owner alone (rewriting it can be refused).
    $acl = New-Object -TypeName System.Security.AccessControl.FileSecurity
    $acl.AddAccessRule($rule)
    Set-Acl -LiteralPath $Path -AclObject $acl
}

Function Write-DepotScriptFile {
    <#
    .SYNOPSIS
    Writes script text in the encoding its interpreter expects.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Path,

        [Parameter(Mandatory = $true)]
        [AllowEmptyString()]
        [String]
        $Text
    )

    switch ([IO.Path]::GetExtension($Path).ToLowerInvariant()) {
        '.ps1' {
            # Windows PowerShell reads a file without a byte-order mark as ANSI, not UTF-8.
            $encoding = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $true
        }
        '.cmd' {
            # cmd.exe reads batch files in the OEM code page and stumbles over bare LF line endings.
            $encoding = [Text.Encoding]::GetEncoding([Globalization.CultureInfo]::CurrentCulture.TextInfo.OEMCodePage)
            $Text = $Text -replace '\r?\n', "`r`n"
        }
        default {
            $encoding = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false
        }
    }
    [IO.File]::WriteAllText($Path, $Text, $encoding)
}

Function Get-DepotScriptExtension {
    <#
    .SYNOPSIS
    The file extension an interpreter needs for a script file (powershell -File insists on .ps1).
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [Parameter(Mandatory = $true)]
        [String[]]
        $Interpreter
    )

    switch -Regex ([IO.Path]::GetFileNameWithoutExtension($Interpreter[0]).ToLowerInvariant()) {
        '^(powershell|pwsh)$' { '.ps1'; break }
        '^cmd$' { '.cmd'; break }
        '^[cw]script$' { '.vbs'; break }
        '^(python[0-9.]*|py)$' { '.py'; break }
        '^(bash|sh)$' { '.sh'; break }
        default { '.txt' }
    }
}

Function Get-DepotSafeUrl {
    <#
    .SYNOPSIS
    A URL without its query string, for messages: a short-lived signed URL is a credential.
    #>
    [CmdletBinding()]
    [OutputType([String])]
    param (
        [Parameter(Mandatory = $true)]
        [Uri]
        $Url
    )

    $Url.GetLeftPart([UriPartial]::Path)
}

Function Save-DepotUrl {
    <#
    .SYNOPSIS
    Downloads a URL to a file, hashing it while it streams.

    .OUTPUTS
    @{ bytes = Int64; sha256 = hex }
    #>
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param (
        [Parameter(Mandatory = $true)]
        [Uri]
        $Url,

        [Parameter(Mandatory = $true)]
        [String]
        $Path
    )

    # Windows PowerShell 5.1 does not offer TLS 1.2 by default on older .NET configurations.
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor
    [Net.SecurityProtocolType]::Tls12

    $request = [Net.WebRequest]::Create($Url)
    $request.Timeout = 100000
    $request.ReadWriteTimeout = 300000
    if ($request -is [Net.HttpWebRequest]) {
        $request.UserAgent = 'depot.software'
    }

    $sha256 = [Security.Cryptography.SHA256]::Create()
    $total = [Int64]0
    $response = $request.GetResponse()
    try {
        $source = $response.GetResponseStream()
        $target = [IO.File]::Create($Path)
        try {
            $buffer = New-Object -TypeName Byte[] -ArgumentList 1048576
            while (($read = $source.Read($buffer, 0, $buffer.Length)) -gt 0) {
                $target.Write($buffer, 0, $read)
                $null = $sha256.TransformBlock($buffer, 0, $read, $null, 0)
                $total += $read
            }
            $null = $sha256.TransformFinalBlock($buffer, 0, 0)
        }
        finally {
            $target.Dispose()
            $source.Dispose()
        }
    }
    finally {
        $response.Dispose()
    }

    @{
        bytes = $total
        sha256 = ([BitConverter]::ToString($sha256.Hash) -replace '-', '').ToLowerInvariant()
    }
}

Function Open-DepotVerifiedFile {
    <#
    .SYNOPSIS
    Opens a file so nobody can change, replace or delete it, and hashes it through that handle.

    .DESCRIPTION
    The handle (read access, shared for reading only) is kept open until the installer has run: what was
    verified is what runs, even if someone could write to the directory. Installers and msiexec open
    their package for reading, which the sharing mode allows.

    .OUTPUTS
    @{ Stream = FileStream; Sha256 = hex }
    #>
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Path
    )

    $stream = [IO.File]::Open($Path, [IO.FileMode]::Open, [IO.FileAccess]::Read, [IO.FileShare]::Read)
    try {
        $sha256 = [Security.Cryptography.SHA256]::Create()
        $hash = ([BitConverter]::ToString($sha256.ComputeHash($stream)) -replace '-', '').ToLowerInvariant()
        $stream.Position = 0
    }
    catch {
        $stream.Dispose()
        throw
    }
    @{ Stream = $stream; Sha256 = $hash }
}

Function Get-DepotContent {
    <#
    .SYNOPSIS
    Makes an installer available on the host and verifies it before anything runs it.

    .DESCRIPTION
    An http(s) URL is downloaded once into <CacheDirectory>\sha256\<checksum>\<file name> and re-used
    while its hash still matches. A local or UNC path is used in place, verified when a checksum is given.
    Errors are thrown with a message naming the option (src or checksum).

    .OUTPUTS
    Content: @{ path; sha256; cached; bytes_downloaded } for the result.
    Lock: the open handle of Open-DepotVerifiedFile; dispose it once the installer has finished.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Source,

        [AllowNull()]
        [AllowEmptyString()]
        [String]
        $Checksum,

        [Parameter(Mandatory = $true)]
        [String]
        $CacheDirectory
    )

    $expected = if ($Checksum) { $Checksum.Trim().ToLowerInvariant() } else { $null }

    if ($Source -notmatch '^https?://') {
        if (-not (Test-Path -LiteralPath $Source -PathType Leaf)) {
            throw "src: the installer '$Source' does not exist or cannot be reached"
        }
        try {
            $opened = Open-DepotVerifiedFile -Path $Source
        }
        catch {
            throw "src: cannot read the installer '$Source': $($_.Exception.Message)"
        }
        if ($expected -and $opened.Sha256 -ne $expected) {
            $opened.Stream.Dispose()
            throw "checksum mismatch for src '$Source': expected sha256 $expected, got $($opened.Sha256); nothing was run"
        }
        return [PSCustomObject]@{
            Content = @{ path = $Source; sha256 = $opened.Sha256; cached = $false; bytes_downloaded = 0 }
            Lock = $opened.Stream
        }
    }

    $url = [Uri]$Source
    $safeUrl = Get-DepotSafeUrl -Url $url
    $fileName = [Uri]::UnescapeDataString($url.Segments[-1]).Trim('/')
    foreach ($invalid in [IO.Path]::GetInvalidFileNameChars()) {
        $fileName = $fileName.Replace([String]$invalid, '_')
    }
    if (-not $fileName) {
        $fileName = 'installer'
    }

    Initialize-DepotDirectory -Path $CacheDirectory
    $directory = Join-Path -Path $CacheDirectory -ChildPath "sha256\$expected"
    $target = Join-Path -Path $directory -ChildPath $fileName

    if (Test-Path -LiteralPath $target -PathType Leaf) {
        # Verify what will run, through the handle that keeps it from changing until it has run.
        $opened = Open-DepotVerifiedFile -Path $target
        if ($opened.Sha256 -eq $expected) {
            return [PSCustomObject]@{
                Content = @{ path = $target; sha256 = $expected; cached = $true; bytes_downloaded = 0 }
                Lock = $opened.Stream
            }
        }
        # A damaged cache entry is replaced, never run.
        $opened.Stream.Dispose()
        Remove-Item -LiteralPath $target -Force
    }

    $null = New-Item -Path $directory -ItemType Directory -Force
    # A unique partial name: two runs downloading the same content must not write one file.
    $partial = '{0}.{1}.partial' -f $target, [Guid]::NewGuid().ToString('N')
    try {
        try {
            $download = Save-DepotUrl -Url $url -Path $partial
        }
        catch {
            throw "src: download of '$safeUrl' failed: $($_.Exception.Message)"
        }
        if ($download.sha256 -ne $expected) {
            throw "checksum mismatch for src '$safeUrl': expected sha256 $expected, got $($download.sha256); nothing was run"
        }
        if (-not (Test-Path -LiteralPath $target -PathType Leaf)) {
            [IO.File]::Move($partial, $target)
        }
        # else another run finished the same download first: its copy is verified below.
    }
    finally {
        if (Test-Path -LiteralPath $partial) {
            Remove-Item -LiteralPath $partial -Force -ErrorAction SilentlyContinue
        }
    }

    # Hashed again through the handle that is held until the installer has run.
    $opened = Open-DepotVerifiedFile -Path $target
    if ($opened.Sha256 -ne $expected) {
        $opened.Stream.Dispose()
        throw "checksum mismatch for src '$safeUrl' in the cache: expected sha256 $expected, got $($opened.Sha256); nothing was run"
    }
    [PSCustomObject]@{
        Content = @{ path = $target; sha256 = $expected; cached = $false; bytes_downloaded = $download.bytes }
        Lock = $opened.Stream
    }
}

Function Get-DepotUninstallEntry {
    <#
    .SYNOPSIS
    Entries of the Uninstall registry keys: HKLM in the 64-bit and 32-bit views and every loaded user hive.

    .PARAMETER IncludeHidden
    Also return what Programs and Features hides: entries without a name, system components and updates.
    #>
    [CmdletBinding()]
    param (
        [Switch]
        $IncludeHidden
    )

    $uninstallPath = 'Software\Microsoft\Windows\CurrentVersion\Uninstall'
    if ([Environment]::Is64BitOperatingSystem) {
        # PROCESSOR_ARCHITEW6432 is set only in a 32-bit process on 64-bit Windows, and names the OS's.
        $osArchitecture = $env:PROCESSOR_ARCHITEW6432
        if (-not $osArchitecture) {
            $osArchitecture = $env:PROCESSOR_ARCHITECTURE
        }
        $nativeArchitecture = 'x64'
        if ($osArchitecture -eq 'ARM64') {
            $nativeArchitecture = 'arm64'
        }
        $views = @(
            @{ View = [Microsoft.Win32.RegistryView]::Registry64; Architecture = $nativeArchitecture },
            @{ View = [Microsoft.Win32.RegistryView]::Registry32; Architecture = 'x86' }
        )
    }
    else {
        $views = @(@{ View = [Microsoft.Win32.RegistryView]::Default; Architecture = 'x86' })
    }

    foreach ($view in $views) {
        $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, $view.View)
        try {
            Read-DepotUninstallKey -BaseKey $base -Path $uninstallPath -Scope 'machine' `
                -Architecture $view.Architecture -IncludeHidden:$IncludeHidden
        }
        finally {
            $base.Dispose()
        }
    }

    # Per-user installations live in each user's hive; only the hives of logged-on users are loaded.
    $users = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::Users,
        [Microsoft.Win32.RegistryView]::Default)
    try {
        foreach ($sid in $users.GetSubKeyNames()) {
            if ($sid -notmatch '^S-1-5-21-[0-9-]+$') {
                continue  # well-known service accounts and the *_Classes hives
            }
            Read-DepotUninstallKey -BaseKey $users -Path "$sid\$uninstallPath" -Scope 'user' `
                -Architecture $null -UserSid $sid -IncludeHidden:$IncludeHidden
        }
    }
    finally {
        $users.Dispose()
    }
}

Function Read-DepotUninstallKey {
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Microsoft.Win32.RegistryKey]
        $BaseKey,

        [Parameter(Mandatory = $true)]
        [String]
        $Path,

        [Parameter(Mandatory = $true)]
        [String]
        $Scope,

        [AllowNull()]
        [String]
        $Architecture,

        [String]
        $UserSid,

        [Switch]
        $IncludeHidden
    )

    $key = $BaseKey.OpenSubKey($Path)
    if (-not $key) {
        return
    }
    try {
        foreach ($keyName in $key.GetSubKeyNames()) {
            $entry = $key.OpenSubKey($keyName)
            if (-not $entry) {
                continue
            }
            try {
                $displayName = [String]$entry.GetValue('DisplayName')
                $hidden = (-not $displayName) -or ($entry.GetValue('SystemComponent') -eq 1) -or
                ($entry.GetValue('ParentKeyName'))
                if ($hidden -and -not $IncludeHidden) {
                    continue
                }

                $uninstallString = $entry.GetValue('QuietUninstallString')
                if (-not $uninstallString) {
                    $uninstallString = $entry.GetValue('UninstallString')
                }

                $installDate = [String]$entry.GetValue('InstallDate')
                $parsedDate = [DateTime]::MinValue
                if ([DateTime]::TryParseExact($installDate, 'yyyyMMdd', [Globalization.CultureInfo]::InvariantCulture,
                        [Globalization.DateTimeStyles]::None, [ref]$parsedDate)) {
                    $installDate = $parsedDate.ToString('yyyy-MM-dd')
                }
                elseif (-not $installDate) {
                    $installDate = $null
                }

                # The key of an MSI product is named after its product code.
                $productCode = $null
                if ($keyName -match '^\{[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}\}$') {
                    $productCode = $keyName.ToUpperInvariant()
                }

                [PSCustomObject]@{
                    Name = $displayName
                    Version = [String]$entry.GetValue('DisplayVersion')
                    Publisher = [String]$entry.GetValue('Publisher')
                    ProductCode = $productCode
                    UninstallString = $uninstallString
                    InstallDate = $installDate
                    Architecture = $Architecture
                    Scope = $Scope
                    UserSid = $UserSid
                    KeyName = $keyName
                    WindowsInstaller = ($entry.GetValue('WindowsInstaller') -eq 1)
                }
            }
            finally {
                $entry.Dispose()
            }
        }
    }
    finally {
        $key.Dispose()
    }
}

Function Get-DepotMsixPackage {
    <#
    .SYNOPSIS
    MSIX/AppX packages: installed for one user (UserSid), for any user, and optionally provisioned ones.
    #>
    [CmdletBinding()]
    param (
        [String]
        $FamilyName,

        [String]
        $UserSid,

        [Switch]
        $IncludeProvisioned
    )

    if (-not (Get-Command -Name Get-AppxPackage -ErrorAction SilentlyContinue)) {
        return
    }

    $packages = if ($UserSid) {
        Get-AppxPackage -User $UserSid -ErrorAction Stop
    }
    else {
        Get-AppxPackage -AllUsers -ErrorAction Stop
    }
    foreach ($package in $packages) {
        if ($FamilyName -and $package.PackageFamilyName -ne $FamilyName) {
            continue
        }
        [PSCustomObject]@{
            Name = $package.Name
            FamilyName = $package.PackageFamilyName
            FullName = $package.PackageFullName
            Version = [String]$package.Version
            Publisher = $package.Publisher
            Architecture = ([String]$package.Architecture).ToLowerInvariant()
            IsFramework = [Bool]$package.IsFramework
            IsResourcePackage = [Bool]$package.IsResourcePackage
            Provisioned = $false
        }
    }

    if ($IncludeProvisioned) {
        # DISM reports the architecture as a number (PROCESSOR_ARCHITECTURE_*).
        $architectures = @{ 0 = 'x86'; 5 = 'arm'; 9 = 'x64'; 11 = 'neutral'; 12 = 'arm64' }
        foreach ($package in @(Get-AppxProvisionedPackage -Online -ErrorAction Stop)) {
            $family = '{0}_{1}' -f $package.DisplayName, $package.PublisherId
            if ($FamilyName -and $family -ne $FamilyName) {
                continue
            }
            $architecture = [String]$package.Architecture
            $number = 0
            if ([Int32]::TryParse($architecture, [ref]$number) -and $architectures.ContainsKey($number)) {
                $architecture = $architectures[$number]
            }
            [PSCustomObject]@{
                Name = $package.DisplayName
                FamilyName = $family
                FullName = $package.PackageName
                Version = [String]$package.Version
                Publisher = $null
                Architecture = $architecture
                IsFramework = $false
                IsResourcePackage = $false
                Provisioned = $true
            }
        }
    }
}

Function Get-DepotChocoPath {
    [CmdletBinding()]
    [OutputType([String])]
    param ()

    $roots = @(
        $env:ChocolateyInstall,
        # The machine value: this process may have started before Chocolatey was installed.
        [Environment]::GetEnvironmentVariable('ChocolateyInstall', 'Machine'),
        (Join-Path -Path $env:ProgramData -ChildPath 'chocolatey')
    )
    foreach ($root in $roots) {
        if ($root) {
            $candidate = Join-Path -Path $root -ChildPath 'bin\choco.exe'
            if (Test-Path -LiteralPath $candidate -PathType Leaf) {
                return $candidate
            }
        }
    }
    $command = Get-Command -Name choco.exe -CommandType Application -ErrorAction SilentlyContinue |
        Select-Object -First 1
    if ($command) {
        return $command.Path
    }
    $null
}

Function Get-DepotWingetPath {
    [CmdletBinding()]
    [OutputType([String])]
    param ()

    $command = Get-Command -Name winget.exe -CommandType Application -ErrorAction SilentlyContinue |
        Select-Object -First 1
    if ($command) {
        return $command.Path
    }

    # winget is an App Execution Alias of the App Installer package, registered per user: SYSTEM has
    # none, so use the newest installed App Installer directly.
    $appsRoot = Join-Path -Path $env:ProgramFiles -ChildPath 'WindowsApps'
    $best = $null
    $bestVersion = $null
    $folders = @(Get-ChildItem -LiteralPath $appsRoot -Filter 'Microsoft.DesktopAppInstaller_*__8wekyb3d8bbwe' `
            -Directory -ErrorAction SilentlyContinue)
    foreach ($folder in $folders) {
        $candidate = Join-Path -Path $folder.FullName -ChildPath 'winget.exe'
        if (-not (Test-Path -LiteralPath $candidate -PathType Leaf)) {
            continue
        }
        $version = ($folder.Name -split '_')[1]
        if (-not $best -or (Compare-DepotVersion -Left $version -Right $bestVersion) -gt 0) {
            $best = $candidate
            $bestVersion = $version
        }
    }
    $best
}

Function Invoke-DepotProcess {
    <#
    .SYNOPSIS
    Runs argv as the module's own identity (detection scripts, package-manager queries).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [String[]]
        $Argv,

        [String]
        $WorkingDirectory,

        [Int32]
        $Timeout = 0
    )

    Invoke-DepotCommand -Argv $Argv -Context 'system' -WorkingDirectory $WorkingDirectory -Timeout $Timeout
}

Function Test-DepotChocoPackage {
    [CmdletBinding()]
    [OutputType([Boolean])]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Name,

        [String]
        $Version
    )

    $choco = Get-DepotChocoPath
    if (-not $choco) {
        return $false  # no Chocolatey: nothing is installed through it
    }

    if ($null -eq $script:ChocoMajorVersion) {
        $probe = Invoke-DepotProcess -Argv @($choco, '--version') -Timeout $script:DETECTION_TIMEOUT
        $script:ChocoMajorVersion = 0
        if ($probe.Stdout -match '(\d+)\.\d+') {
            $script:ChocoMajorVersion = [Int32]$Matches[1]
        }
    }

    $argv = @($choco, 'list', '--limit-output', '--exact', $Name)
    if ($script:ChocoMajorVersion -lt 2) {
        $argv += '--local-only'  # Chocolatey 1.x lists the remote source without it
    }
    $run = Invoke-DepotProcess -Argv $argv -Timeout $script:DETECTION_TIMEOUT
    if ($run.TimedOut) {
        throw "choco list did not finish within $($script:DETECTION_TIMEOUT) seconds"
    }
    if ($run.ExitCode -ne 0) {
        throw "choco list exited with $($run.ExitCode): $(@(Get-DepotTail -Text $run.Stdout -Count 5) -join ' ')"
    }
    foreach ($line in ($run.Stdout -split '\r?\n')) {
        $id, $installed = $line.Trim() -split '\|', 2
        if ($id -eq $Name) {
            return (Test-DepotVersion -Actual $installed -Minimum $Version)
        }
    }
    $false
}

Function Test-DepotWingetPackage {
    [CmdletBinding()]
    [OutputType([Boolean])]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Name,

        [String]
        $Version
    )

    $winget = Get-DepotWingetPath
    if (-not $winget) {
        return $false
    }

    $argv = @($winget, 'list', '--id', $Name, '--exact', '--accept-source-agreements')
    $run = Invoke-DepotProcess -Argv $argv -Timeout $script:DETECTION_TIMEOUT
    if ($run.TimedOut) {
        throw "winget list did not finish within $($script:DETECTION_TIMEOUT) seconds"
    }
    if ($run.ExitCode -eq $script:WINGET_NO_APPLICATIONS_FOUND) {
        return $false
    }
    if ($run.ExitCode -ne 0) {
        throw "winget list exited with $($run.ExitCode): $(@(Get-DepotTail -Text $run.Stdout -Count 5) -join ' ')"
    }
    if (-not $Version) {
        return $true
    }

    # A table "Name  Id  Version  [Available]  Source": the version is the column after the id.
    foreach ($line in @(Get-DepotTail -Text $run.Stdout -Count 1000)) {
        $columns = @($line.Trim() -split '\s+')
        $index = [Array]::IndexOf([String[]]@($columns | ForEach-Object { $_.ToLowerInvariant() }),
            $Name.ToLowerInvariant())
        if ($index -ge 0 -and $index + 1 -lt $columns.Count) {
            return (Test-DepotVersion -Actual $columns[$index + 1] -Minimum $Version)
        }
    }
    $false
}

Function Get-DepotRegistryLocation {
    <#
    .SYNOPSIS
    Splits HKLM:\Software\X, HKLM\Software\X or HKEY_LOCAL_MACHINE\Software\X into hive and sub key.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Key,

        [String]
        $UserSid
    )

    $text = $Key -replace '^Registry::', ''
    if ($text -notmatch '^(?<hive>[A-Za-z_]+):?(\\(?<path>.*))?$') {
        throw "key '$Key' is not a registry path such as HKLM:\SOFTWARE\Vendor"
    }
    $subKey = ([String]$Matches['path']).Trim('\')
    $hive = switch ($Matches['hive'].ToUpperInvariant()) {
        'HKLM' { 'LocalMachine' }
        'HKEY_LOCAL_MACHINE' { 'LocalMachine' }
        'HKCU' { 'CurrentUser' }
        'HKEY_CURRENT_USER' { 'CurrentUser' }
        'HKU' { 'Users' }
        'HKEY_USERS' { 'Users' }
        'HKCR' { 'ClassesRoot' }
        'HKEY_CLASSES_ROOT' { 'ClassesRoot' }
        'HKCC' { 'CurrentConfig' }
        'HKEY_CURRENT_CONFIG' { 'CurrentConfig' }
        default { throw "key '$Key' does not start with a registry hive (HKLM, HKCU, HKU, HKCR, HKCC)" }
    }

    # HKCU of this process is SYSTEM's; for a user run-as context, look in that user's (loaded) hive.
    if ($hive -eq 'CurrentUser' -and $UserSid) {
        $hive = 'Users'
        $subKey = ('{0}\{1}' -f $UserSid, $subKey).TrimEnd('\')
    }
    @{ Hive = [Microsoft.Win32.RegistryHive]$hive; SubKey = $subKey }
}

Function Test-DepotRegistryData {
    [CmdletBinding()]
    [OutputType([Boolean])]
    param (
        [AllowNull()]
        [Object]
        $Actual,

        [AllowNull()]
        [Object]
        $Expected
    )

    if ($null -eq $Actual) {
        return $false
    }
    if ($Actual -is [Byte[]]) {
        $Actual = ($Actual | ForEach-Object { $_.ToString('x2') }) -join ''  # REG_BINARY as hex
    }
    elseif ($Actual -is [String[]]) {
        $Actual = $Actual -join "`n"  # REG_MULTI_SZ, one line per string
    }
    elseif ($Actual -is [Int32]) {
        # REG_DWORD arrives signed; compare it as the unsigned number regedit shows.
        $Actual = [BitConverter]::ToUInt32([BitConverter]::GetBytes([Int32]$Actual), 0)
    }

    $actualNumber = [Int64]0
    $expectedNumber = [Int64]0
    $expectedText = "$Expected"
    if ($expectedText -match '^0x[0-9A-Fa-f]+$') {
        $expectedText = [Convert]::ToInt64($expectedText.Substring(2), 16).ToString()
    }
    if ([Int64]::TryParse("$Actual", [ref]$actualNumber) -and [Int64]::TryParse($expectedText, [ref]$expectedNumber)) {
        return ($actualNumber -eq $expectedNumber)
    }
    [String]::Equals("$Actual", "$Expected", [StringComparison]::OrdinalIgnoreCase)
}

Function Assert-DepotDetection {
    <#
    .SYNOPSIS
    Checks the shape of detection rules before anything is evaluated; throws a message naming the rule.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Collections.IDictionary]
        $Detection
    )

    $required = @{
        file = @('path')
        msi = @('product_code')
        msix = @('name')
        registry = @('key')
        script = @('script')
        choco = @('name')
        winget = @('name')
    }

    $rules = @($Detection.rules)
    if ($rules.Count -eq 0) {
        throw 'detection.rules must hold at least one rule'
    }
    for ($i = 0; $i -lt $rules.Count; $i++) {
        $rule = $rules[$i]
        $type = [String]$rule.type
        if ($type -in @('dpkg', 'rpm')) {
            throw "detection.rules[$i]: type '$type' cannot be evaluated on Windows"
        }
        if (-not $required.ContainsKey($type)) {
            throw "detection.rules[$i]: unknown type '$type' (expected one of: $(($required.Keys | Sort-Object) -join ', '))"
        }
        foreach ($field in $required[$type]) {
            if (-not $rule[$field]) {
                throw "detection.rules[$i]: '$field' is required for type '$type'"
            }
        }
        if ($type -eq 'msi' -and $rule.product_code -notmatch '^\{[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}\}$') {
            throw "detection.rules[$i]: product_code '$($rule.product_code)' is not a product code like {12345678-90AB-CDEF-1234-567890ABCDEF}"
        }
        if ($type -eq 'registry' -and $null -ne $rule.data -and $rule.version) {
            throw "detection.rules[$i]: 'data' and 'version' are mutually exclusive"
        }
    }
}

Function Test-DepotDetection {
    <#
    .SYNOPSIS
    Evaluates detection rules combined with all/any. Throws "detection.rules[N] (type) cannot be evaluated".

    .PARAMETER UserSid
    The account of a user run-as context: msix rules look at that user's packages, HKCU at that user's hive.
    #>
    [CmdletBinding()]
    [OutputType([Boolean])]
    param (
        [Parameter(Mandatory = $true)]
        [Collections.IDictionary]
        $Detection,

        [String]
        $UserSid
    )

    Assert-DepotDetection -Detection $Detection
    $matchAll = $Detection.match -ne 'any'
    $rules = @($Detection.rules)

    $workDirectory = $null
    try {
        for ($i = 0; $i -lt $rules.Count; $i++) {
            $rule = $rules[$i]
            if ($rule.type -eq 'script' -and -not $workDirectory) {
                $workDirectory = New-DepotRunDirectory
            }
            try {
                $found = Test-DepotDetectionRule -Rule $rule -Index $i -UserSid $UserSid -WorkDirectory $workDirectory
            }
            catch {
                throw "detection.rules[$i] ($($rule.type)) cannot be evaluated: $($_.Exception.Message)"
            }
            # MECM semantics: stop at the first rule that decides the outcome.
            if ($matchAll -and -not $found) {
                return $false
            }
            if (-not $matchAll -and $found) {
                return $true
            }
        }
    }
    finally {
        Remove-DepotRunDirectory -Path $workDirectory
    }
    $matchAll
}

Function Test-DepotDetectionRule {
    [CmdletBinding()]
    [OutputType([Boolean])]
    param (
        [Parameter(Mandatory = $true)]
        [Collections.IDictionary]
        $Rule,

        [Int32]
        $Index,

        [String]
        $UserSid,

        [String]
        $WorkDirectory
    )

    switch ($Rule.type) {
        'file' {
            $path = [Environment]::ExpandEnvironmentVariables($Rule.path)
            if (-not [IO.Path]::IsPathRooted($path)) {
                throw "path '$path' is not absolute"
            }
            $path = [IO.Path]::GetFullPath($path)  # throws on invalid path syntax
            if (-not $Rule.version) {
                return (Test-Path -LiteralPath $path)
            }
            if (-not (Test-Path -LiteralPath $path -PathType Leaf)) {
                return $false
            }
            $info = [Diagnostics.FileVersionInfo]::GetVersionInfo($path)
            $fileVersion = '{0}.{1}.{2}.{3}' -f $info.FileMajorPart, $info.FileMinorPart, $info.FileBuildPart,
            $info.FilePrivatePart
            return (Test-DepotVersion -Actual $fileVersion -Minimum $Rule.version)
        }
        'msi' {
            $code = $Rule.product_code.ToUpperInvariant()
            if ([Depot.Win.Msi]::QueryProductState($code) -eq $script:INSTALLSTATE_DEFAULT) {
                $installedVersion = [Depot.Win.Msi]::GetProductInfo($code, 'VersionString')
                return (Test-DepotVersion -Actual $installedVersion -Minimum $Rule.version)
            }
            # MsiQueryProductState sees the machine and this process's user (SYSTEM). A per-user product
            # installed by a logged-on user shows only in that user's Uninstall key.
            foreach ($entry in @(Get-DepotUninstallEntry -IncludeHidden | Where-Object { $_.Scope -eq 'user' })) {
                if ($entry.WindowsInstaller -and $entry.ProductCode -eq $code -and
                    (-not $UserSid -or $entry.UserSid -eq $UserSid)) {
                    return (Test-DepotVersion -Actual $entry.Version -Minimum $Rule.version)
                }
            }
            return $false
        }
        'msix' {
            $packages = @(Get-DepotMsixPackage -FamilyName $Rule.name -UserSid $UserSid -IncludeProvisioned:(-not $UserSid))
            foreach ($package in $packages) {
                if (Test-DepotVersion -Actual $package.Version -Minimum $Rule.version) {
                    return $true
                }
            }
            return $false
        }
        'registry' {
            $location = Get-DepotRegistryLocation -Key $Rule.key -UserSid $UserSid
            # A 32-bit installer writes to the WOW6432Node view: look in both views.
            $views = @([Microsoft.Win32.RegistryView]::Default)
            if ([Environment]::Is64BitOperatingSystem) {
                $views = @([Microsoft.Win32.RegistryView]::Registry64, [Microsoft.Win32.RegistryView]::Registry32)
            }
            foreach ($view in $views) {
                if (Test-DepotRegistryView -Location $location -View $view -Rule $Rule) {
                    return $true
                }
            }
            return $false
        }
        'script' {
            $interpreter = @($script:DefaultScriptInterpreter)
            if ($Rule.interpreter) {
                $interpreter = @($Rule.interpreter)
            }
            $extension = Get-DepotScriptExtension -Interpreter $interpreter
            $scriptPath = Join-Path -Path $WorkDirectory -ChildPath "detect-$Index$extension"
            Write-DepotScriptFile -Path $scriptPath -Text $Rule.script

            $run = Invoke-DepotProcess -Argv ($interpreter + @($scriptPath)) -WorkingDirectory $WorkDirectory `
                -Timeout $script:DETECTION_TIMEOUT
            if ($run.TimedOut) {
                throw "the script did not finish within $($script:DETECTION_TIMEOUT) seconds"
            }
            # MECM/Intune truth table: exit 0 with output = installed, exit 0 without = not installed,
            # any other exit code = unknown.
            if ($run.ExitCode -ne 0) {
                $message = 'the script exited with {0} {1}' -f $run.ExitCode, (@(Get-DepotTail -Text $run.Stderr -Count 5) -join ' ')
                throw $message.TrimEnd()
            }
            return [Bool]("$($run.Stdout)".Trim())
        }
        'choco' {
            return (Test-DepotChocoPackage -Name $Rule.name -Version $Rule.version)
        }
        'winget' {
            return (Test-DepotWingetPackage -Name $Rule.name -Version $Rule.version)
        }
    }
    throw "unknown type '$($Rule.type)'"
}

Function Test-DepotRegistryView {
    [CmdletBinding()]
    [OutputType([Boolean])]
    param (
        [Parameter(Mandatory = $true)]
        [Hashtable]
        $Location,

        [Parameter(Mandatory = $true)]
        [Microsoft.Win32.RegistryView]
        $View,

        [Parameter(Mandatory = $true)]
        [Collections.IDictionary]
        $Rule
    )

    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey($Location.Hive, $View)
    try {
        $key = $base.OpenSubKey($Location.SubKey)
        if (-not $key) {
            return $false
        }
        try {
            if ($null -eq $Rule.value) {
                return $true
            }
            # An empty value name is the key's (Default) value; names compare without regard to case.
            if ($Rule.value -ne '' -and $key.GetValueNames() -notcontains $Rule.value) {
                return $false
            }
            $data = $key.GetValue($Rule.value)
            if ($null -ne $Rule.data) {
                return (Test-DepotRegistryData -Actual $data -Expected $Rule.data)
            }
            if ($Rule.version) {
                return (Test-DepotVersion -Actual ([String]$data) -Minimum $Rule.version)
            }
            return ($null -ne $data)
        }
        finally {
            $key.Dispose()
        }
    }
    finally {
        $base.Dispose()
    }
}

# Started by the one-off scheduled task of the logged_in_user context, in the user's session. It runs the
# command described in spec.json with its output redirected to files and exits with the command's exit
# code, which Task Scheduler records as the task's LastTaskResult.
$script:SessionLauncher = @'
$ErrorActionPreference = 'Stop'
$runDirectory = $PSScriptRoot
$specPath = Join-Path -Path $runDirectory -ChildPath 'spec.json'
$utf8 = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false
try {
    $spec = [IO.File]::ReadAllText($specPath, $utf8) | ConvertFrom-Json
    # The spec may carry secrets in its environment: it is not needed once read.
    [IO.File]::Delete($specPath)

    # Console programs inherit this (hidden) console; make it UTF-8 so their output decodes predictably.
    try {
        [Console]::OutputEncoding = $utf8
    }
    catch {
        $null = $_  # no console to set: output is decoded as UTF-8 all the same
    }

    $startInfo = New-Object -TypeName System.Diagnostics.ProcessStartInfo
    $startInfo.FileName = $spec.file
    $startInfo.Arguments = $spec.arguments
    if ($spec.cwd) {
        $startInfo.WorkingDirectory = $spec.cwd
    }
    $startInfo.UseShellExecute = $false
    $startInfo.RedirectStandardOutput = $true
    $startInfo.RedirectStandardError = $true
    $startInfo.StandardOutputEncoding = $utf8
    $startInfo.StandardErrorEncoding = $utf8
    if ($spec.environment) {
        foreach ($variable in $spec.environment.PSObject.Properties) {
            $startInfo.EnvironmentVariables[$variable.Name] = [String]$variable.Value
        }
    }

    $process = [System.Diagnostics.Process]::Start($startInfo)
    [IO.File]::WriteAllText((Join-Path -Path $runDirectory -ChildPath 'pid'), [String]$process.Id)
    $stdout = $process.StandardOutput.ReadToEndAsync()
    $stderr = $process.StandardError.ReadToEndAsync()
    $process.WaitForExit()
    # A child that inherited the pipes may keep them open: do not wait long for the end of the output.
    $null = [Threading.Tasks.Task]::WaitAll([Threading.Tasks.Task[]]@($stdout, $stderr), 5000)
    if ($stdout.IsCompleted) {
        [IO.File]::WriteAllText((Join-Path -Path $runDirectory -ChildPath 'stdout.txt'), $stdout.Result, $utf8)
    }
    if ($stderr.IsCompleted) {
        [IO.File]::WriteAllText((Join-Path -Path $runDirectory -ChildPath 'stderr.txt'), $stderr.Result, $utf8)
    }
    $exitCode = $process.ExitCode
}
catch {
    [IO.File]::WriteAllText((Join-Path -Path $runDirectory -ChildPath 'launch_error.txt'), ($_ | Out-String), $utf8)
    exit 1
}
exit $exitCode
'@

Function Invoke-DepotSessionCommand {
    <#
    .SYNOPSIS
    Runs a command in the interactive user's session through a one-off scheduled task and waits for it.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [String]
        $Program,

        [AllowEmptyString()]
        [String]
        $ArgumentText,

        [Parameter(Mandatory = $true)]
        [String]
        $UserName,

        [Parameter(Mandatory = $true)]
        [String]
        $RunDirectory,

        [String]
        $WorkingDirectory,

        [Collections.IDictionary]
        $Environment,

        [Int32]
        $Timeout = 0
    )

    $utf8 = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false
    $launcher = Join-Path -Path $RunDirectory -ChildPath 'launch.ps1'
    Write-DepotScriptFile -Path $launcher -Text $script:SessionLauncher
    $spec = @{
        file = $Program
        arguments = $ArgumentText
        cwd = $WorkingDirectory
        environment = $Environment
    }
    [IO.File]::WriteAllText((Join-Path -Path $RunDirectory -ChildPath 'spec.json'),
        (ConvertTo-Json -InputObject $spec -Depth 3 -Compress), $utf8)

    $taskPath = '\Depot\'
    $taskName = 'depot-' + [Guid]::NewGuid().ToString('N')
    $taskArguments = Format-DepotArgumentList -Program $script:PowerShellPath -ArgumentList @(
        '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-WindowStyle', 'Hidden', '-File', $launcher
    )
    $action = New-ScheduledTaskAction -Execute $script:PowerShellPath -Argument $taskArguments -WorkingDirectory $RunDirectory
    # LogonType Interactive runs the task inside the user's existing session with the user's own
    # (non-elevated, as for anything the user starts) token; it never runs when the user is not logged on.
    $principal = New-ScheduledTaskPrincipal -UserId $UserName -LogonType Interactive -RunLevel Limited
    # No execution time limit of its own: our timeout decides.
    $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -Hidden `
        -MultipleInstances IgnoreNew -ExecutionTimeLimit ([TimeSpan]::Zero)
    $null = Register-ScheduledTask -TaskName $taskName -TaskPath $taskPath -Action $action -Principal $principal `
        -Settings $settings -Force

    $pidPath = Join-Path -Path $RunDirectory -ChildPath 'pid'
    $timedOut = $false
    $noSession = $false
    $exitCode = $null
    $watch = [Diagnostics.Stopwatch]::StartNew()
    try {
        Start-ScheduledTask -TaskName $taskName -TaskPath $taskPath
        $started = $false
        while ($true) {
            Start-Sleep -Milliseconds 500
            $task = Get-ScheduledTask -TaskName $taskName -TaskPath $taskPath
            $info = Get-ScheduledTaskInfo -InputObject $task
            $running = ([String]$task.State -in @('Running', 'Queued')) -or
            ($info.LastTaskResult -eq $script:SCHED_S_TASK_RUNNING)
            if ($running -or (Test-Path -LiteralPath $pidPath)) {
                $started = $true
            }

            if (-not $running -and ($started -or $info.LastTaskResult -ne $script:SCHED_S_TASK_HAS_NOT_RUN)) {
                break
            }
            if (-not $started -and $watch.Elapsed.TotalSeconds -ge 60) {
                # The task never started: the user logged off between our check and the start.
                $noSession = $true
                break
            }
            if ($Timeout -gt 0 -and $watch.Elapsed.TotalSeconds -ge $Timeout) {
                $timedOut = $true
                # Kill the command's tree first (while its parent links are intact), then the launcher.
                if (Test-Path -LiteralPath $pidPath) {
                    [Depot.Win.ProcessRunner]::KillProcessTree([Int32][IO.File]::ReadAllText($pidPath))
                }
                Stop-ScheduledTask -TaskName $taskName -TaskPath $taskPath -ErrorAction SilentlyContinue
                break
            }
        }
        $watch.Stop()

        $launchError = Join-Path -Path $RunDirectory -ChildPath 'launch_error.txt'
        if (Test-Path -LiteralPath $launchError) {
            throw "could not start '$Program' in the session of ${UserName}: $([IO.File]::ReadAllText($launchError))"
        }
        if (-not $timedOut -and -not $noSession) {
            if (-not (Test-Path -LiteralPath $pidPath)) {
                throw ("the scheduled task for {0} did not start the command (task result 0x{1:X8})" -f
                    $UserName, [UInt32]$info.LastTaskResult)
            }
            $exitCode = ConvertTo-DepotInt32 -Value $info.LastTaskResult
        }
    }
    finally {
        Unregister-ScheduledTask -TaskName $taskName -TaskPath $taskPath -Confirm:$false -ErrorAction SilentlyContinue
    }

    $output = @{}
    foreach ($stream in @('stdout', 'stderr')) {
        $file = Join-Path -Path $RunDirectory -ChildPath "$stream.txt"
        $output[$stream] = if (Test-Path -LiteralPath $file) { [IO.File]::ReadAllText($file, $utf8) } else { '' }
    }

    [PSCustomObject]@{
        ExitCode = $exitCode
        Stdout = $output.stdout
        Stderr = $output.stderr
        TimedOut = $timedOut
        NoSession = $noSession
        Duration = $watch.Elapsed.TotalSeconds
    }
}

Function Invoke-DepotCommand {
    <#
    .SYNOPSIS
    Runs one argv in a run-as context, with a timeout that kills the whole process tree.

    .DESCRIPTION
    system: as the module's own identity (the playbook uses become: runas SYSTEM).
    user: as UserName with Password (LogonUser + CreateProcessWithTokenW; LogonType new_credentials keeps
    the local identity and uses the credentials for network access only).
    logged_in_user: in the session of UserName through a one-off scheduled task.

    .OUTPUTS
    Argv (as run, argv[0] resolved), ExitCode (Int32, $null when killed or never started), Stdout, Stderr,
    TimedOut, NoSession, Duration (seconds).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [String[]]
        $Argv,

        [ValidateSet('system', 'user', 'logged_in_user')]
        [String]
        $Context = 'system',

        [String]
        $UserName,

        [String]
        $Password,

        [String]
        $LogonType = 'interactive',

        [String]
        $RunDirectory,

        [String]
        $WorkingDirectory,

        [Collections.IDictionary]
        $Environment,

        [Int32]
        $Timeout = 0
    )

    $program = Resolve-DepotExecutable -Name $Argv[0]
    $arguments = @($Argv | Select-Object -Skip 1)
    $argumentText = Format-DepotArgumentList -Program $program -ArgumentList $arguments
    $resolvedArgv = @($program) + $arguments

    if ($Context -eq 'logged_in_user') {
        $run = Invoke-DepotSessionCommand -Program $program -ArgumentText $argumentText -UserName $UserName `
            -RunDirectory $RunDirectory -WorkingDirectory $WorkingDirectory -Environment $Environment -Timeout $Timeout
        $run | Add-Member -MemberType NoteProperty -Name Argv -Value $resolvedArgv
        return $run
    }

    $commandLine = ConvertTo-DepotCommandLine -Argv $resolvedArgv
    $runAs = $null
    if ($Context -eq 'user') {
        $runAs = $UserName
    }
    $result = [Depot.Win.ProcessRunner]::Run($program, $commandLine, $WorkingDirectory, $Environment, $Timeout,
        $runAs, $Password, $LogonType, $null)

    $exitCode = $result.ExitCode
    if ($result.TimedOut) {
        $exitCode = $null  # killed by us: the code is ours, not the installer's
    }
    [PSCustomObject]@{
        Argv = $resolvedArgv
        ExitCode = $exitCode
        Stdout = $result.Stdout
        Stderr = $result.Stderr
        TimedOut = $result.TimedOut
        NoSession = $false
        Duration = $result.DurationSeconds
    }
}

Function Set-DepotRunResult {
    <#
    .SYNOPSIS
    Copies one command run into the module result: status, rc, cmd, duration and masked output tails.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Object]
        $Module,

        [Parameter(Mandatory = $true)]
        [Object]
        $Run,

        [Int32]
        $TailLines = 40,

        [AllowNull()]
        [AllowEmptyCollection()]
        [String[]]
        $Secret,

        [String]
        $LogPath,

        [Int64]
        $LogOffset = 0
    )

    $result = $Module.Result
    $result.cmd = @($Run.Argv | ForEach-Object { Protect-DepotText -Text $_ -Secret $Secret })
    $result.changed = $true
    $result.duration = [Math]::Round($Run.Duration, 3)
    $result.stdout_tail = @(Get-DepotTail -Text $Run.Stdout -Count $TailLines -Secret $Secret)
    $result.stderr_tail = @(Get-DepotTail -Text $Run.Stderr -Count $TailLines -Secret $Secret)
    if ($LogPath -and (Test-Path -LiteralPath $LogPath -PathType Leaf)) {
        try {
            $result.log_tail = @(Get-DepotFileTail -Path $LogPath -Count $TailLines -Offset $LogOffset -Secret $Secret)
        }
        catch {
            $Module.Warn("could not read the log '$LogPath': $($_.Exception.Message)")
        }
    }
    if ($Run.TimedOut) {
        $result.status = 'timeout'
        $result.rc = $null
    }
    else {
        $result.status = 'executed'
        $result.rc = $Run.ExitCode
    }
}

Function Get-DepotLogOffset {
    <#
    .SYNOPSIS
    The current length of a log that a run will append to, so only its new lines are reported.
    #>
    [CmdletBinding()]
    [OutputType([Int64])]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [String]
        $Path
    )

    if ($Path -and (Test-Path -LiteralPath $Path -PathType Leaf)) {
        return (Get-Item -LiteralPath $Path).Length
    }
    [Int64]0
}

Function Resolve-DepotRunAs {
    <#
    .SYNOPSIS
    Works out who a command will run as, before anything is detected or run.

    .OUTPUTS
    @{ Context; UserName; UserSid; NoSession } - UserSid is set for user contexts (per-user detection).
    #>
    [CmdletBinding()]
    [OutputType([Hashtable])]
    param (
        [Parameter(Mandatory = $true)]
        [Object]
        $Module
    )

    $context = $Module.Params.run_as
    $runAs = @{ Context = $context; UserName = $null; UserSid = $null; NoSession = $false }
    switch ($context) {
        'system' {
            $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
            $runAs.UserName = $identity.Name
            if ($identity.User.Value -ne 'S-1-5-18') {
                $Module.Warn("run_as system: the module runs as $($identity.Name), not SYSTEM; use become: true, become_method: runas, become_user: SYSTEM")
            }
        }
        'user' {
            $runAs.UserName = $Module.Params.run_as_user
            try {
                $runAs.UserSid = Resolve-DepotAccount -Name $runAs.UserName
            }
            catch {
                $Module.FailJson("run_as_user: '$($runAs.UserName)' is not a known account: $($_.Exception.Message)", $_)
            }
            if ($Module.Params.run_as_logon_type -eq 'new_credentials') {
                # Locally the command is still this module's identity: per-user detection stays ours.
                $runAs.UserSid = $null
            }
        }
        'logged_in_user' {
            $session = Get-DepotInteractiveUser
            if ($session) {
                $runAs.UserName = $session.UserName
                try {
                    $runAs.UserSid = Resolve-DepotAccount -Name $session.UserName
                }
                catch {
                    $runAs.UserSid = $null
                }
            }
            else {
                $runAs.NoSession = $true
            }
        }
    }
    $Module.Result.run_as = @{ context = $context; user = $runAs.UserName }
    $runAs
}

$exportMembers = @{
    Function = @(
        'Assert-DepotDetection'
        'Compare-DepotVersion'
        'ConvertTo-DepotArgument'
        'ConvertTo-DepotArgv'
        'ConvertTo-DepotCommandLine'
        'ConvertTo-DepotInt32'
        'Format-DepotArgumentList'
        'Get-DepotBootId'
        'Get-DepotChocoPath'
        'Get-DepotCommonSpec'
        'Get-DepotContent'
        'Get-DepotFileTail'
        'Get-DepotInteractiveUser'
        'Get-DepotLogOffset'
        'Get-DepotMsixPackage'
        'Get-DepotScriptExtension'
        'Get-DepotSession'
        'Get-DepotTail'
        'Get-DepotUninstallEntry'
        'Get-DepotWingetPath'
        'Grant-DepotFileAccess'
        'Initialize-DepotDirectory'
        'Initialize-DepotResult'
        'Invoke-DepotCommand'
        'New-DepotRunDirectory'
        'Protect-DepotText'
        'Remove-DepotRunDirectory'
        'Resolve-DepotAccount'
        'Resolve-DepotExecutable'
        'Resolve-DepotRunAs'
        'Set-DepotRunResult'
        'Test-DepotDetection'
        'Test-DepotInstallerBusy'
        'Test-DepotVersion'
        'Write-DepotScriptFile'
    )
}
Export-ModuleMember @exportMembers
