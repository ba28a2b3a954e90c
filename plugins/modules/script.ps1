#!powershell

# Copyright: (c) 2025, Depot developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.depot.software.plugins.module_utils._DepotWin

# The Windows executor of depot.software.script (documentation: script.py, contract:
# docs/module-contract.md): run one script with the run-as, timeout and exit-code semantics of the
# package module. Secrets reach the script as environment variables and every secret value is masked
# as ******** in everything returned. With detection, a satisfied detection skips the run.

$spec = @{
    options = @{
        name = @{ type = 'str' }
        script = @{ type = 'str' }
        script_path = @{ type = 'str' }
        interpreter = @{ type = 'list'; elements = 'str' }
        arguments = @{ type = 'list'; elements = 'str'; default = @() }
        secrets = @{ type = 'dict'; default = @{}; no_log = $true }
    }
    mutually_exclusive = @(
        , @('script', 'script_path')
    )
    required_one_of = @(
        , @('script', 'script_path')
    )
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @(Get-DepotCommonSpec))

$params = $module.Params
Initialize-DepotResult -Module $module -Context $params.run_as

# Secrets win over environment entries of the same name.
$environment = @{}
$secrets = @()
foreach ($option in @('environment', 'secrets')) {
    if (-not $params[$option]) {
        continue
    }
    foreach ($entry in $params[$option].GetEnumerator()) {
        $variableName = [String]$entry.Key
        if ($variableName -notmatch '^[A-Za-z_][A-Za-z0-9_]*$') {
            $module.FailJson("${option}: '$variableName' is not a valid environment variable name")
        }
        $environment[$variableName] = [String]$entry.Value
        $secrets += [String]$entry.Value
    }
}
$secrets += @($params.run_as_password)

if ($params.timeout -lt 0) {
    $module.FailJson("timeout must be 0 or more, got $($params.timeout)")
}
if ($params.script_path -and -not [IO.Path]::IsPathRooted($params.script_path)) {
    $module.FailJson("script_path must be an absolute path on the host, got '$($params.script_path)'")
}
$interpreter = @(
    (Join-Path -Path $env:SystemRoot -ChildPath 'System32\WindowsPowerShell\v1.0\powershell.exe'),
    '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File'
)
if ($params.interpreter) {
    $interpreter = @($params.interpreter)
    if (-not $interpreter[0]) {
        $module.FailJson('interpreter must start with a program')
    }
}

$runAs = Resolve-DepotRunAs -Module $module

$detection = $params.detection
if ($detection) {
    try {
        $module.Result.detected_before = Test-DepotDetection -Detection $detection -UserSid $runAs.UserSid
    }
    catch {
        $module.FailJson($_.Exception.Message, $_)
    }
    if ($module.Result.detected_before) {
        $module.Result.status = 'satisfied'
        $module.ExitJson()
    }
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
try {
    $runDirectory = New-DepotRunDirectory -AccountSid $runAs.UserSid

    $scriptFile = $params.script_path
    if ($null -ne $params.script) {
        # The interpreter decides the extension: powershell.exe -File insists on .ps1, cmd.exe on .cmd.
        $extension = Get-DepotScriptExtension -Interpreter $interpreter
        $scriptFile = Join-Path -Path $runDirectory -ChildPath "script$extension"
        Write-DepotScriptFile -Path $scriptFile -Text $params.script
    }
    elseif (-not (Test-Path -LiteralPath $scriptFile -PathType Leaf)) {
        $module.FailJson("script_path: '$scriptFile' does not exist")
    }

    $argv = [String[]](@($interpreter) + @($scriptFile) + @($params.arguments))
    $logOffset = Get-DepotLogOffset -Path $params.log_path
    $commandParams = @{
        Argv = $argv
        Context = $runAs.Context
        UserName = $runAs.UserName
        Password = $params.run_as_password
        LogonType = $params.run_as_logon_type
        RunDirectory = $runDirectory
        WorkingDirectory = $runDirectory
        Environment = $environment
        Timeout = $params.timeout
    }
    try {
        $run = Invoke-DepotCommand @commandParams
    }
    catch {
        $module.Result.cmd = @($argv | ForEach-Object { Protect-DepotText -Text $_ -Secret $secrets })
        $module.FailJson("could not run the script: $(Protect-DepotText -Text $_.Exception.Message -Secret $secrets)", $_)
    }

    if ($run.NoSession) {
        $module.Result.status = 'no_user_session'
        $module.Result.msg = "run_as logged_in_user: $($runAs.UserName) logged off before the script started"
        $module.ExitJson()
    }
    Set-DepotRunResult -Module $module -Run $run -TailLines $params.tail_lines -Secret $secrets `
        -LogPath $params.log_path -LogOffset $logOffset
    if ($run.TimedOut) {
        $module.Result.msg = "the script was killed with its process tree after the timeout of $($params.timeout) seconds"
    }
}
finally {
    Remove-DepotRunDirectory -Path $runDirectory
}

if ($detection) {
    try {
        $module.Result.detected_after = Test-DepotDetection -Detection $detection -UserSid $runAs.UserSid
    }
    catch {
        $module.FailJson($_.Exception.Message, $_)
    }
}
$module.ExitJson()
