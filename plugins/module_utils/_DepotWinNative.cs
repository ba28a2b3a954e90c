// Copyright: (c) 2025, Depot developers
// GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
//
// Native helpers for the Windows executors of depot.software, loaded by _DepotWin.psm1:
//   * ProcessRunner: start one command (as the module's identity or with a logon token), put it in a
//     job object so a timeout kills the whole process tree, and capture stdout/stderr through pipes.
//   * Sessions: enumerate Remote Desktop Services sessions (console and RDP users).
//   * Msi: product state and properties through msi.dll.
//   * CommandLine: split a command line exactly as CommandLineToArgvW does.
//   * Disk: free space for any path, UNC paths included.
//
// The code must compile with the C# 5 compiler of .NET Framework (Windows PowerShell 5.1) and with
// warnings treated as errors (Ansible's Add-CSharpType), so it avoids newer syntax.

using Microsoft.Win32.SafeHandles;
using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Runtime.InteropServices;
using System.Security.AccessControl;
using System.Security.Principal;
using System.Text;
using System.Threading;

//AssemblyReference -Type System.Security.AccessControl.NativeObjectSecurity -CLR Core
//AssemblyReference -Type System.Security.Principal.IdentityReference -CLR Core
//TypeAccelerator -Name Depot.Win.CommandLine -TypeName CommandLine
//TypeAccelerator -Name Depot.Win.Disk -TypeName Disk
//TypeAccelerator -Name Depot.Win.Msi -TypeName Msi
//TypeAccelerator -Name Depot.Win.ProcessRunner -TypeName ProcessRunner
//TypeAccelerator -Name Depot.Win.RunResult -TypeName RunResult
//TypeAccelerator -Name Depot.Win.SessionInfo -TypeName SessionInfo
//TypeAccelerator -Name Depot.Win.Sessions -TypeName Sessions

namespace ansible_collections.depot.software.plugins.module_utils._DepotWinNative
{
    internal class NativeHelpers
    {
        [StructLayout(LayoutKind.Sequential)]
        public class SECURITY_ATTRIBUTES
        {
            public UInt32 nLength;
            public IntPtr lpSecurityDescriptor;
            public bool bInheritHandle;

            public SECURITY_ATTRIBUTES()
            {
                nLength = (UInt32)Marshal.SizeOf(this);
            }
        }

        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        public class STARTUPINFOW
        {
            public UInt32 cb;
            public IntPtr lpReserved;
            public IntPtr lpDesktop;
            public IntPtr lpTitle;
            public UInt32 dwX;
            public UInt32 dwY;
            public UInt32 dwXSize;
            public UInt32 dwYSize;
            public UInt32 dwXCountChars;
            public UInt32 dwYCountChars;
            public UInt32 dwFillAttribute;
            public UInt32 dwFlags;
            public UInt16 wShowWindow;
            public UInt16 cbReserved2;
            public IntPtr lpReserved2;
            public IntPtr hStdInput;
            public IntPtr hStdOutput;
            public IntPtr hStdError;

            public STARTUPINFOW()
            {
                cb = (UInt32)Marshal.SizeOf(this);
            }
        }

        [StructLayout(LayoutKind.Sequential)]
        public struct PROCESS_INFORMATION
        {
            public IntPtr hProcess;
            public IntPtr hThread;
            public Int32 dwProcessId;
            public Int32 dwThreadId;
        }

        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        public struct PROCESSENTRY32W
        {
            public UInt32 dwSize;
            public UInt32 cntUsage;
            public UInt32 th32ProcessID;
            public IntPtr th32DefaultHeapID;
            public UInt32 th32ModuleID;
            public UInt32 cntThreads;
            public UInt32 th32ParentProcessID;
            public Int32 pcPriClassBase;
            public UInt32 dwFlags;
            [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 260)]
            public string szExeFile;
        }

        [StructLayout(LayoutKind.Sequential)]
        public struct WTS_SESSION_INFOW
        {
            public UInt32 SessionId;
            public IntPtr pWinStationName;
            public UInt32 State;
        }

        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        public struct WTSINFOW
        {
            public UInt32 State;
            public UInt32 SessionId;
            public UInt32 IncomingBytes;
            public UInt32 OutgoingBytes;
            public UInt32 IncomingFrames;
            public UInt32 OutgoingFrames;
            public UInt32 IncomingCompressedBytes;
            public UInt32 OutgoingCompressedBytes;
            [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 32)]
            public string WinStationName;
            [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 17)]
            public string Domain;
            [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 21)]
            public string UserName;
            public Int64 ConnectTime;
            public Int64 DisconnectTime;
            public Int64 LastInputTime;
            public Int64 LogonTime;
            public Int64 CurrentTime;
        }

        [StructLayout(LayoutKind.Sequential)]
        public struct WTS_CLIENT_ADDRESS
        {
            public UInt32 AddressFamily;
            [MarshalAs(UnmanagedType.ByValArray, SizeConst = 20)]
            public byte[] Address;
        }

        public const UInt32 CREATE_SUSPENDED = 0x00000004;
        public const UInt32 CREATE_UNICODE_ENVIRONMENT = 0x00000400;
        public const UInt32 HANDLE_FLAG_INHERIT = 0x00000001;
        public const UInt32 INFINITE = 0xFFFFFFFF;
        public const UInt32 LOGON_WITH_PROFILE = 0x00000001;
        public const UInt32 STARTF_USESTDHANDLES = 0x00000100;
        public const UInt32 TH32CS_SNAPPROCESS = 0x00000002;
        public const UInt32 TOKEN_ELEVATION_TYPE_LIMITED = 3;
        public const UInt32 TOKEN_INFORMATION_ELEVATION_TYPE = 18;
        public const UInt32 TOKEN_INFORMATION_LINKED_TOKEN = 19;
        public const UInt32 WAIT_TIMEOUT = 0x00000102;
    }

    internal class NativeMethods
    {
        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern bool AllocConsole();

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern bool AssignProcessToJobObject(
            SafeNativeHandle hJob,
            IntPtr hProcess);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern bool CloseHandle(
            IntPtr hObject);

        [DllImport("shell32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
        public static extern IntPtr CommandLineToArgvW(
            string lpCmdLine,
            out Int32 pNumArgs);

        [DllImport("userenv.dll", SetLastError = true)]
        public static extern bool CreateEnvironmentBlock(
            out IntPtr lpEnvironment,
            SafeNativeHandle hToken,
            bool bInherit);

        [DllImport("kernel32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
        public static extern SafeNativeHandle CreateJobObjectW(
            IntPtr lpJobAttributes,
            string lpName);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern bool CreatePipe(
            out SafeFileHandle hReadPipe,
            out SafeFileHandle hWritePipe,
            NativeHelpers.SECURITY_ATTRIBUTES lpPipeAttributes,
            UInt32 nSize);

        [DllImport("kernel32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
        public static extern bool CreateProcessW(
            string lpApplicationName,
            StringBuilder lpCommandLine,
            IntPtr lpProcessAttributes,
            IntPtr lpThreadAttributes,
            bool bInheritHandles,
            UInt32 dwCreationFlags,
            IntPtr lpEnvironment,
            string lpCurrentDirectory,
            NativeHelpers.STARTUPINFOW lpStartupInfo,
            out NativeHelpers.PROCESS_INFORMATION lpProcessInformation);

        [DllImport("advapi32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
        public static extern bool CreateProcessWithTokenW(
            SafeNativeHandle hToken,
            UInt32 dwLogonFlags,
            string lpApplicationName,
            StringBuilder lpCommandLine,
            UInt32 dwCreationFlags,
            IntPtr lpEnvironment,
            string lpCurrentDirectory,
            NativeHelpers.STARTUPINFOW lpStartupInfo,
            out NativeHelpers.PROCESS_INFORMATION lpProcessInformation);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern SafeNativeHandle CreateToolhelp32Snapshot(
            UInt32 dwFlags,
            UInt32 th32ProcessID);

        [DllImport("userenv.dll", SetLastError = true)]
        public static extern bool DestroyEnvironmentBlock(
            IntPtr lpEnvironment);

        [DllImport("advapi32.dll", SetLastError = true)]
        public static extern bool DuplicateTokenEx(
            SafeNativeHandle hExistingToken,
            UInt32 dwDesiredAccess,
            IntPtr lpTokenAttributes,
            UInt32 ImpersonationLevel,
            UInt32 TokenType,
            out SafeNativeHandle phNewToken);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern bool FreeConsole();

        [DllImport("kernel32.dll")]
        public static extern IntPtr GetConsoleWindow();

        [DllImport("kernel32.dll")]
        public static extern UInt32 GetCurrentThreadId();

        [DllImport("kernel32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
        public static extern bool GetDiskFreeSpaceExW(
            string lpDirectoryName,
            out UInt64 lpFreeBytesAvailable,
            out UInt64 lpTotalNumberOfBytes,
            out UInt64 lpTotalNumberOfFreeBytes);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern bool GetExitCodeProcess(
            IntPtr hProcess,
            out UInt32 lpExitCode);

        [DllImport("user32.dll", SetLastError = true)]
        public static extern NoopSafeHandle GetProcessWindowStation();

        [DllImport("user32.dll", SetLastError = true)]
        public static extern NoopSafeHandle GetThreadDesktop(
            UInt32 dwThreadId);

        [DllImport("advapi32.dll", SetLastError = true)]
        public static extern bool GetTokenInformation(
            SafeNativeHandle TokenHandle,
            UInt32 TokenInformationClass,
            out IntPtr TokenInformation,
            UInt32 TokenInformationLength,
            out UInt32 ReturnLength);

        [DllImport("advapi32.dll", SetLastError = true)]
        public static extern bool GetTokenInformation(
            SafeNativeHandle TokenHandle,
            UInt32 TokenInformationClass,
            out UInt32 TokenInformation,
            UInt32 TokenInformationLength,
            out UInt32 ReturnLength);

        [DllImport("kernel32.dll")]
        public static extern IntPtr LocalFree(
            IntPtr hMem);

        [DllImport("advapi32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
        public static extern bool LogonUserW(
            string lpszUsername,
            string lpszDomain,
            string lpszPassword,
            UInt32 dwLogonType,
            UInt32 dwLogonProvider,
            out SafeNativeHandle phToken);

        [DllImport("msi.dll", CharSet = CharSet.Unicode)]
        public static extern UInt32 MsiGetProductInfoW(
            string szProduct,
            string szProperty,
            StringBuilder lpValueBuf,
            ref UInt32 pcchValueBuf);

        [DllImport("msi.dll", CharSet = CharSet.Unicode)]
        public static extern Int32 MsiQueryProductStateW(
            string szProduct);

        [DllImport("kernel32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
        public static extern bool Process32FirstW(
            SafeNativeHandle hSnapshot,
            ref NativeHelpers.PROCESSENTRY32W lppe);

        [DllImport("kernel32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
        public static extern bool Process32NextW(
            SafeNativeHandle hSnapshot,
            ref NativeHelpers.PROCESSENTRY32W lppe);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern UInt32 ResumeThread(
            IntPtr hThread);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern bool SetConsoleCP(
            UInt32 wCodePageID);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern bool SetConsoleOutputCP(
            UInt32 wCodePageID);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern bool SetHandleInformation(
            SafeHandle hObject,
            UInt32 dwMask,
            UInt32 dwFlags);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern bool TerminateJobObject(
            SafeNativeHandle hJob,
            UInt32 uExitCode);

        [DllImport("kernel32.dll", SetLastError = true)]
        public static extern UInt32 WaitForSingleObject(
            IntPtr hHandle,
            UInt32 dwMilliseconds);

        [DllImport("wtsapi32.dll", SetLastError = true)]
        public static extern bool WTSEnumerateSessionsW(
            IntPtr hServer,
            UInt32 Reserved,
            UInt32 Version,
            out IntPtr ppSessionInfo,
            out UInt32 pCount);

        [DllImport("wtsapi32.dll")]
        public static extern void WTSFreeMemory(
            IntPtr pMemory);

        [DllImport("wtsapi32.dll", SetLastError = true)]
        public static extern bool WTSQuerySessionInformationW(
            IntPtr hServer,
            UInt32 SessionId,
            UInt32 WTSInfoClass,
            out IntPtr ppBuffer,
            out UInt32 pBytesReturned);
    }

    public class SafeNativeHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public SafeNativeHandle() : base(true) { }
        public SafeNativeHandle(IntPtr handle) : base(true) { SetHandle(handle); }

        protected override bool ReleaseHandle()
        {
            return NativeMethods.CloseHandle(handle);
        }
    }

    // Window station and desktop handles from GetProcessWindowStation/GetThreadDesktop must not be closed.
    internal class NoopSafeHandle : SafeHandle
    {
        public NoopSafeHandle() : base(IntPtr.Zero, false) { }
        public override bool IsInvalid { get { return false; } }
        protected override bool ReleaseHandle() { return true; }
    }

    public class NativeException : System.ComponentModel.Win32Exception
    {
        private readonly string _message;

        public NativeException(string message) : this(Marshal.GetLastWin32Error(), message) { }

        public NativeException(int errorCode, string message) : base(errorCode)
        {
            _message = String.Format("{0} ({1}, Win32ErrorCode {2} - 0x{2:X8})", message, base.Message, errorCode);
        }

        public override string Message { get { return _message; } }
    }

    public class RunResult
    {
        public int ExitCode { get; internal set; }
        public string Stdout { get; internal set; }
        public string Stderr { get; internal set; }
        public bool TimedOut { get; internal set; }
        public double DurationSeconds { get; internal set; }
        public int ProcessId { get; internal set; }
        // False when the process could not be put in a job object; a timeout then kills the tree
        // found by walking parent process ids instead.
        public bool InJob { get; internal set; }
    }

    /// <summary>Reads one pipe on a background thread, keeping only the end of a long output.</summary>
    internal class OutputCollector
    {
        private const int MaxChars = 1024 * 1024;
        private readonly StringBuilder _text = new StringBuilder();
        private readonly StreamReader _reader;
        private readonly Thread _thread;

        public OutputCollector(SafeFileHandle readHandle, Encoding encoding)
        {
            _reader = new StreamReader(new FileStream(readHandle, FileAccess.Read, 4096), encoding, true, 4096);
            _thread = new Thread(Pump);
            // A grandchild that inherited the pipe may keep it open long after the installer exited;
            // a background thread never keeps the module's process alive.
            _thread.IsBackground = true;
            _thread.Start();
        }

        public bool Truncated { get; private set; }

        public string Text
        {
            get
            {
                lock (_text)
                {
                    return _text.ToString();
                }
            }
        }

        public bool Wait(int milliseconds)
        {
            return _thread.Join(milliseconds);
        }

        private void Pump()
        {
            char[] buffer = new char[4096];
            try
            {
                int read;
                while ((read = _reader.Read(buffer, 0, buffer.Length)) > 0)
                {
                    lock (_text)
                    {
                        _text.Append(buffer, 0, read);
                        if (_text.Length > MaxChars)
                        {
                            _text.Remove(0, _text.Length - MaxChars);
                            Truncated = true;
                        }
                    }
                }
            }
            catch (IOException) { }             // broken pipe: every writer is gone
            catch (ObjectDisposedException) { } // the reader was closed while we gave up waiting
        }
    }

    public static class ProcessRunner
    {
        // Exit code given to processes killed on timeout: ERROR_TIMEOUT.
        public const UInt32 TimeoutExitCode = 1460;

        // After the main process exits, how long to wait for stdout/stderr to reach end-of-file. Children
        // that inherited the pipe handles (and are still running) would otherwise block us forever.
        private const int OutputGraceMilliseconds = 5000;

        /// <summary>
        /// Runs one command line and waits for it, killing its whole process tree after timeoutSeconds.
        /// </summary>
        /// <param name="applicationName">Full path of the executable.</param>
        /// <param name="commandLine">The complete, already quoted command line (argv[0] included).</param>
        /// <param name="currentDirectory">Working directory, or null/empty for the caller's.</param>
        /// <param name="environment">Variables added to the environment of the new process.</param>
        /// <param name="timeoutSeconds">0 waits forever.</param>
        /// <param name="userName">Null/empty: run as the caller. Otherwise DOMAIN\user, user@domain or user.</param>
        /// <param name="password">Password of userName.</param>
        /// <param name="logonType">interactive, batch, network_cleartext or new_credentials.</param>
        /// <param name="outputEncoding">Encoding name used to decode stdout/stderr; default utf-8.</param>
        public static RunResult Run(string applicationName, string commandLine, string currentDirectory,
            IDictionary environment, int timeoutSeconds, string userName, string password, string logonType,
            string outputEncoding)
        {
            // $null from PowerShell arrives as an empty string.
            if (String.IsNullOrEmpty(applicationName))
                applicationName = null;
            if (String.IsNullOrEmpty(currentDirectory))
                currentDirectory = null;
            Encoding encoding = String.IsNullOrEmpty(outputEncoding)
                ? new UTF8Encoding(false)
                : Encoding.GetEncoding(outputEncoding);

            List<SafeNativeHandle> tokens = new List<SafeNativeHandle>();
            UInt32 logonFlags = NativeHelpers.LOGON_WITH_PROFILE;
            if (!String.IsNullOrEmpty(userName))
            {
                if (String.Equals(logonType, "new_credentials", StringComparison.OrdinalIgnoreCase))
                    logonFlags = 0;  // the token is the caller's; only its network credentials differ
                else
                    GrantWindowStationAccess(userName);
                tokens = LogonTokens(userName, password, logonType);
            }

            SafeFileHandle stdoutRead, stdoutWrite, stderrRead, stderrWrite, stdinRead, stdinWrite;
            CreatePipe(out stdoutRead, out stdoutWrite, false);
            CreatePipe(out stderrRead, out stderrWrite, false);
            CreatePipe(out stdinRead, out stdinWrite, true);

            NativeHelpers.STARTUPINFOW si = new NativeHelpers.STARTUPINFOW();
            si.dwFlags = NativeHelpers.STARTF_USESTDHANDLES;
            si.hStdInput = stdinRead.DangerousGetHandle();
            si.hStdOutput = stdoutWrite.DangerousGetHandle();
            si.hStdError = stderrWrite.DangerousGetHandle();

            UInt32 flags = NativeHelpers.CREATE_SUSPENDED | NativeHelpers.CREATE_UNICODE_ENVIRONMENT;
            NativeHelpers.PROCESS_INFORMATION pi = new NativeHelpers.PROCESS_INFORMATION();
            Stopwatch watch = new Stopwatch();
            IntPtr envBlock = IntPtr.Zero;
            bool created = false;
            try
            {
                envBlock = BuildEnvironment(environment, tokens.Count > 0 ? tokens[tokens.Count - 1] : null);

                // Console programs started from a WinRM host would each get a console of their own; give them
                // one shared console whose code page is UTF-8 so their output decodes predictably.
                bool allocatedConsole = false;
                if (NativeMethods.GetConsoleWindow() == IntPtr.Zero)
                {
                    allocatedConsole = NativeMethods.AllocConsole();
                    NativeMethods.SetConsoleCP(65001);
                    NativeMethods.SetConsoleOutputCP(65001);
                }
                try
                {
                    StringBuilder cmd = new StringBuilder(commandLine);
                    watch.Start();
                    if (tokens.Count == 0)
                    {
                        if (!NativeMethods.CreateProcessW(applicationName, cmd, IntPtr.Zero, IntPtr.Zero, true, flags,
                                envBlock, currentDirectory, si, out pi))
                            throw new NativeException(String.Format("CreateProcessW({0}) failed", applicationName));
                    }
                    else
                    {
                        // An administrator's interactive logon yields a filtered (UAC) token and its elevated twin;
                        // the elevated one is tried first and works when we hold SeTcbPrivilege (SYSTEM does).
                        bool started = false;
                        int lastError = 0;
                        foreach (SafeNativeHandle token in tokens)
                        {
                            if (NativeMethods.CreateProcessWithTokenW(token, logonFlags, applicationName, cmd, flags,
                                    envBlock, currentDirectory, si, out pi))
                            {
                                started = true;
                                break;
                            }
                            lastError = Marshal.GetLastWin32Error();
                        }
                        if (!started)
                            throw new NativeException(lastError,
                                String.Format("CreateProcessWithTokenW({0}) as {1} failed", applicationName, userName));
                    }
                }
                finally
                {
                    if (allocatedConsole)
                        NativeMethods.FreeConsole();
                }
                created = true;
            }
            finally
            {
                if (!created)
                {
                    stdoutRead.Dispose();
                    stderrRead.Dispose();
                }
                FreeEnvironment(envBlock);
                foreach (SafeNativeHandle token in tokens)
                    token.Dispose();
                // The child holds its own copies now; keep only our ends of the pipes.
                stdoutWrite.Dispose();
                stderrWrite.Dispose();
                stdinRead.Dispose();
                stdinWrite.Dispose();  // the child reads end-of-file from stdin: installers must not prompt
            }

            using (SafeNativeHandle process = new SafeNativeHandle(pi.hProcess))
            using (SafeNativeHandle thread = new SafeNativeHandle(pi.hThread))
            using (SafeNativeHandle job = NativeMethods.CreateJobObjectW(IntPtr.Zero, null))
            {
                // The job is created without KILL_ON_JOB_CLOSE: when the installer exits normally, helpers it
                // left running (a launched application, a reboot prompt) are not killed when we close it.
                // Nested jobs (Windows 8 / Server 2012 and later) let this work inside WinRM's own job.
                bool inJob = !job.IsInvalid && NativeMethods.AssignProcessToJobObject(job, process.DangerousGetHandle());

                if (NativeMethods.ResumeThread(thread.DangerousGetHandle()) == 0xFFFFFFFF)
                {
                    int error = Marshal.GetLastWin32Error();
                    KillTree(job, inJob, pi.dwProcessId);
                    throw new NativeException(error, "ResumeThread() failed");
                }

                OutputCollector stdout = new OutputCollector(stdoutRead, encoding);
                OutputCollector stderr = new OutputCollector(stderrRead, encoding);

                UInt32 waitMs = timeoutSeconds > 0
                    ? (UInt32)Math.Min((long)timeoutSeconds * 1000, 0xFFFFFFFEL)
                    : NativeHelpers.INFINITE;
                bool timedOut = NativeMethods.WaitForSingleObject(process.DangerousGetHandle(), waitMs)
                    == NativeHelpers.WAIT_TIMEOUT;
                if (timedOut)
                {
                    KillTree(job, inJob, pi.dwProcessId);
                    NativeMethods.WaitForSingleObject(process.DangerousGetHandle(), 30000);
                }
                watch.Stop();

                UInt32 exitCode;
                if (!NativeMethods.GetExitCodeProcess(process.DangerousGetHandle(), out exitCode))
                    throw new NativeException("GetExitCodeProcess() failed");

                stdout.Wait(OutputGraceMilliseconds);
                stderr.Wait(OutputGraceMilliseconds);

                return new RunResult
                {
                    // Exit codes are DWORDs; report them as signed 32-bit (0x80070005 -> -2147024891).
                    ExitCode = unchecked((int)exitCode),
                    Stdout = stdout.Text,
                    Stderr = stderr.Text,
                    TimedOut = timedOut,
                    DurationSeconds = watch.Elapsed.TotalSeconds,
                    ProcessId = pi.dwProcessId,
                    InJob = inJob,
                };
            }
        }

        /// <summary>Kills a process and every descendant, found by walking parent process ids.</summary>
        public static void KillProcessTree(int rootProcessId)
        {
            Dictionary<int, List<int>> children = new Dictionary<int, List<int>>();
            using (SafeNativeHandle snapshot = NativeMethods.CreateToolhelp32Snapshot(NativeHelpers.TH32CS_SNAPPROCESS, 0))
            {
                if (snapshot.IsInvalid)
                    throw new NativeException("CreateToolhelp32Snapshot() failed");

                NativeHelpers.PROCESSENTRY32W entry = new NativeHelpers.PROCESSENTRY32W();
                entry.dwSize = (UInt32)Marshal.SizeOf(typeof(NativeHelpers.PROCESSENTRY32W));
                bool more = NativeMethods.Process32FirstW(snapshot, ref entry);
                while (more)
                {
                    int parent = (int)entry.th32ParentProcessID;
                    if (!children.ContainsKey(parent))
                        children[parent] = new List<int>();
                    children[parent].Add((int)entry.th32ProcessID);
                    more = NativeMethods.Process32NextW(snapshot, ref entry);
                }
            }

            // Parents first, so a parent cannot start new children while we work down the tree.
            Queue<int> pending = new Queue<int>();
            HashSet<int> seen = new HashSet<int>();
            pending.Enqueue(rootProcessId);
            while (pending.Count > 0)
            {
                int pid = pending.Dequeue();
                if (pid == 0 || !seen.Add(pid))
                    continue;
                List<int> kids;
                if (children.TryGetValue(pid, out kids))
                {
                    foreach (int kid in kids)
                        pending.Enqueue(kid);
                }
                try
                {
                    using (Process p = Process.GetProcessById(pid))
                        p.Kill();
                }
                catch (ArgumentException) { }                           // already gone
                catch (InvalidOperationException) { }                   // exited meanwhile
                catch (System.ComponentModel.Win32Exception) { }        // access denied / terminating
            }
        }

        private static void KillTree(SafeNativeHandle job, bool inJob, int processId)
        {
            if (inJob && NativeMethods.TerminateJobObject(job, TimeoutExitCode))
                return;
            KillProcessTree(processId);
        }

        private static void CreatePipe(out SafeFileHandle read, out SafeFileHandle write, bool childReads)
        {
            NativeHelpers.SECURITY_ATTRIBUTES attributes = new NativeHelpers.SECURITY_ATTRIBUTES();
            attributes.bInheritHandle = true;
            if (!NativeMethods.CreatePipe(out read, out write, attributes, 0))
                throw new NativeException("CreatePipe() failed");

            // Only the child's end may be inherited, or the child would hold our end open too.
            SafeHandle ours = childReads ? (SafeHandle)write : read;
            if (!NativeMethods.SetHandleInformation(ours, NativeHelpers.HANDLE_FLAG_INHERIT, 0))
                throw new NativeException("SetHandleInformation() failed");
        }

        private static List<SafeNativeHandle> LogonTokens(string userName, string password, string logonType)
        {
            string domain = null;
            string user = userName;
            if (user.StartsWith(@".\"))
            {
                domain = ".";
                user = user.Substring(2);
            }
            else if (user.Contains(@"\"))
            {
                string[] parts = user.Split(new char[] { '\\' }, 2);
                domain = parts[0];
                user = parts[1];
            }
            else if (!user.Contains("@"))
            {
                domain = ".";
            }

            UInt32 type;
            UInt32 provider = 0;  // LOGON32_PROVIDER_DEFAULT
            switch ((logonType ?? "interactive").ToLowerInvariant())
            {
                case "batch":
                    type = 4;
                    break;
                case "network_cleartext":
                    type = 8;
                    break;
                case "new_credentials":
                    // Like runas /netonly (LOGON_NETCREDENTIALS_ONLY): the process keeps the caller's local
                    // identity and presents these credentials only to remote servers such as file shares.
                    type = 9;
                    provider = 3;  // LOGON32_PROVIDER_WINNT50, required for NEW_CREDENTIALS
                    break;
                default:
                    type = 2;  // LOGON32_LOGON_INTERACTIVE
                    break;
            }

            SafeNativeHandle token;
            if (!NativeMethods.LogonUserW(user, domain, password, type, provider, out token))
                throw new NativeException(String.Format("LogonUserW({0}) failed", userName));

            List<SafeNativeHandle> tokens = new List<SafeNativeHandle>();
            SafeNativeHandle elevated = GetElevatedToken(token);
            if (elevated != null)
                tokens.Add(elevated);
            tokens.Add(token);  // last entry: the token the environment block is built from
            return tokens;
        }

        private static SafeNativeHandle GetElevatedToken(SafeNativeHandle token)
        {
            UInt32 elevationType;
            UInt32 length;
            if (!NativeMethods.GetTokenInformation(token, NativeHelpers.TOKEN_INFORMATION_ELEVATION_TYPE,
                    out elevationType, 4, out length) || elevationType != NativeHelpers.TOKEN_ELEVATION_TYPE_LIMITED)
                return null;

            IntPtr linked;
            if (!NativeMethods.GetTokenInformation(token, NativeHelpers.TOKEN_INFORMATION_LINKED_TOKEN,
                    out linked, (UInt32)IntPtr.Size, out length))
                return null;

            using (SafeNativeHandle linkedToken = new SafeNativeHandle(linked))
            {
                // Without SeTcbPrivilege the linked token is only an identification token and cannot become a
                // primary token; the caller then falls back to the filtered token.
                SafeNativeHandle primary;
                if (!NativeMethods.DuplicateTokenEx(linkedToken, 0x02000000 /* MAXIMUM_ALLOWED */, IntPtr.Zero,
                        2 /* SecurityImpersonation */, 1 /* TokenPrimary */, out primary))
                    return null;
                return primary;
            }
        }

        private static IntPtr BuildEnvironment(IDictionary extra, SafeNativeHandle token)
        {
            bool hasExtra = extra != null && extra.Count > 0;
            if (token == null && !hasExtra)
                return IntPtr.Zero;  // inherit ours unchanged

            // Start from the target user's own environment (profile paths, TEMP) or ours, then add extras.
            SortedDictionary<string, string> variables = new SortedDictionary<string, string>(
                StringComparer.OrdinalIgnoreCase);
            if (token != null)
            {
                IntPtr block;
                if (!NativeMethods.CreateEnvironmentBlock(out block, token, false))
                    throw new NativeException("CreateEnvironmentBlock() failed");
                try
                {
                    int offset = 0;
                    while (true)
                    {
                        string entry = Marshal.PtrToStringUni(new IntPtr(block.ToInt64() + offset));
                        if (String.IsNullOrEmpty(entry))
                            break;
                        offset += (entry.Length + 1) * 2;
                        int split = entry.IndexOf('=', 1);  // "=C:=C:\" style entries start with '='
                        if (split > 0)
                            variables[entry.Substring(0, split)] = entry.Substring(split + 1);
                    }
                }
                finally
                {
                    NativeMethods.DestroyEnvironmentBlock(block);
                }
            }
            else
            {
                foreach (DictionaryEntry kv in Environment.GetEnvironmentVariables())
                    variables[kv.Key.ToString()] = kv.Value == null ? "" : kv.Value.ToString();
            }

            if (hasExtra)
            {
                foreach (DictionaryEntry kv in extra)
                    variables[kv.Key.ToString()] = kv.Value == null ? "" : kv.Value.ToString();
            }

            // CreateProcess wants NAME=value\0 ... \0\0, sorted without regard to case.
            StringBuilder text = new StringBuilder();
            foreach (KeyValuePair<string, string> kv in variables)
                text.AppendFormat("{0}={1}\0", kv.Key, kv.Value);
            text.Append('\0');
            return Marshal.StringToHGlobalUni(text.ToString());
        }

        private static void FreeEnvironment(IntPtr block)
        {
            if (block != IntPtr.Zero)
                Marshal.FreeHGlobal(block);
        }

        // A process of another user needs access to the window station and desktop it starts on, or its
        // user32 initialisation fails (exit code 0xC0000142). CreateProcessWithTokenW leaves that to us.
        private static void GrantWindowStationAccess(string userName)
        {
            IdentityReference account = new NTAccount(userName.StartsWith(@".\") ? userName.Substring(2) : userName);
            GrantAccess(account, NativeMethods.GetProcessWindowStation(), 0x000F037F);  // WINSTA_ALL_ACCESS
            GrantAccess(account, NativeMethods.GetThreadDesktop(NativeMethods.GetCurrentThreadId()), 0x000F01FF);
        }

        private static void GrantAccess(IdentityReference account, SafeHandle handle, int accessMask)
        {
            WindowObjectSecurity security = new WindowObjectSecurity(handle);
            security.Allow(account, accessMask);
            security.Save(handle);
        }

        private class WindowObjectSecurity : NativeObjectSecurity
        {
            public WindowObjectSecurity(SafeHandle handle)
                : base(false, ResourceType.WindowObject, handle, AccessControlSections.Access) { }

            public void Allow(IdentityReference account, int accessMask)
            {
                AddAccessRule(new WindowObjectAccessRule(account, accessMask));
            }

            public void Save(SafeHandle handle)
            {
                Persist(handle, AccessControlSections.Access);
            }

            public override Type AccessRightType { get { return typeof(int); } }
            public override Type AccessRuleType { get { return typeof(WindowObjectAccessRule); } }
            public override Type AuditRuleType { get { return typeof(AuditRule); } }

            public override AccessRule AccessRuleFactory(IdentityReference identityReference, int accessMask,
                bool isInherited, InheritanceFlags inheritanceFlags, PropagationFlags propagationFlags,
                AccessControlType type)
            {
                return new WindowObjectAccessRule(identityReference, accessMask);
            }

            public override AuditRule AuditRuleFactory(IdentityReference identityReference, int accessMask,
                bool isInherited, InheritanceFlags inheritanceFlags, PropagationFlags propagationFlags,
                AuditFlags flags)
            {
                throw new NotSupportedException();
            }
        }

        private class WindowObjectAccessRule : AccessRule
        {
            public WindowObjectAccessRule(IdentityReference identity, int accessMask)
                : base(identity, accessMask, false, InheritanceFlags.None, PropagationFlags.None,
                    AccessControlType.Allow) { }
        }
    }

    public class SessionInfo
    {
        public int SessionId { get; internal set; }
        public string StationName { get; internal set; }
        public string State { get; internal set; }
        public string UserName { get; internal set; }
        public string Domain { get; internal set; }
        // The Remote Desktop client's IPv4 address, null for the console and other address families.
        public string ClientAddress { get; internal set; }
        // Logon time (UTC), null when the session has no logon.
        public DateTime? LogonTime { get; internal set; }
    }

    public static class Sessions
    {
        private static readonly string[] StateNames = new string[]
        {
            "Active", "Connected", "ConnectQuery", "Shadow", "Disconnected", "Idle", "Listen", "Reset", "Down",
            "Init",
        };

        /// <summary>Every session on this host (WTSEnumerateSessions), with its user when one is logged on.</summary>
        public static SessionInfo[] GetSessions()
        {
            IntPtr buffer;
            UInt32 count;
            if (!NativeMethods.WTSEnumerateSessionsW(IntPtr.Zero, 0, 1, out buffer, out count))
                throw new NativeException("WTSEnumerateSessionsW() failed");

            List<SessionInfo> sessions = new List<SessionInfo>();
            try
            {
                int size = Marshal.SizeOf(typeof(NativeHelpers.WTS_SESSION_INFOW));
                for (int i = 0; i < count; i++)
                {
                    NativeHelpers.WTS_SESSION_INFOW info = (NativeHelpers.WTS_SESSION_INFOW)Marshal.PtrToStructure(
                        new IntPtr(buffer.ToInt64() + (long)i * size), typeof(NativeHelpers.WTS_SESSION_INFOW));
                    sessions.Add(new SessionInfo
                    {
                        SessionId = (int)info.SessionId,
                        StationName = Marshal.PtrToStringUni(info.pWinStationName),
                        State = info.State < StateNames.Length ? StateNames[info.State] : info.State.ToString(),
                        UserName = QueryString(info.SessionId, 5),   // WTSUserName
                        Domain = QueryString(info.SessionId, 7),     // WTSDomainName
                        ClientAddress = QueryClientAddress(info.SessionId),
                        LogonTime = QueryLogonTime(info.SessionId),
                    });
                }
            }
            finally
            {
                NativeMethods.WTSFreeMemory(buffer);
            }
            return sessions.ToArray();
        }

        private static string QueryClientAddress(UInt32 sessionId)
        {
            IntPtr buffer;
            UInt32 bytes;
            if (!NativeMethods.WTSQuerySessionInformationW(IntPtr.Zero, sessionId, 14, out buffer, out bytes))  // WTSClientAddress
                return null;
            try
            {
                NativeHelpers.WTS_CLIENT_ADDRESS address = (NativeHelpers.WTS_CLIENT_ADDRESS)Marshal.PtrToStructure(
                    buffer, typeof(NativeHelpers.WTS_CLIENT_ADDRESS));
                // AF_INET: the address is in bytes 2 to 5.
                if (address.AddressFamily != 2 || address.Address == null)
                    return null;
                return String.Format("{0}.{1}.{2}.{3}", address.Address[2], address.Address[3], address.Address[4],
                    address.Address[5]);
            }
            finally
            {
                NativeMethods.WTSFreeMemory(buffer);
            }
        }

        private static DateTime? QueryLogonTime(UInt32 sessionId)
        {
            IntPtr buffer;
            UInt32 bytes;
            if (!NativeMethods.WTSQuerySessionInformationW(IntPtr.Zero, sessionId, 24, out buffer, out bytes))  // WTSSessionInfo
                return null;
            try
            {
                NativeHelpers.WTSINFOW info = (NativeHelpers.WTSINFOW)Marshal.PtrToStructure(buffer,
                    typeof(NativeHelpers.WTSINFOW));
                if (info.LogonTime <= 0)
                    return null;
                return DateTime.FromFileTimeUtc(info.LogonTime);
            }
            finally
            {
                NativeMethods.WTSFreeMemory(buffer);
            }
        }

        private static string QueryString(UInt32 sessionId, UInt32 infoClass)
        {
            IntPtr buffer;
            UInt32 bytes;
            if (!NativeMethods.WTSQuerySessionInformationW(IntPtr.Zero, sessionId, infoClass, out buffer, out bytes))
                return null;
            try
            {
                return Marshal.PtrToStringUni(buffer);
            }
            finally
            {
                NativeMethods.WTSFreeMemory(buffer);
            }
        }
    }

    public static class Msi
    {
        /// <summary>INSTALLSTATE of a product code; 5 (INSTALLSTATE_DEFAULT) means installed.</summary>
        public static int QueryProductState(string productCode)
        {
            return NativeMethods.MsiQueryProductStateW(productCode);
        }

        /// <summary>A product property such as VersionString, or null when the product or property is unknown.</summary>
        public static string GetProductInfo(string productCode, string property)
        {
            UInt32 length = 64;
            while (true)
            {
                StringBuilder value = new StringBuilder((int)length + 1);
                UInt32 capacity = length + 1;
                UInt32 res = NativeMethods.MsiGetProductInfoW(productCode, property, value, ref capacity);
                if (res == 0)
                    return value.ToString();
                if (res == 234)  // ERROR_MORE_DATA: capacity now holds the needed length
                {
                    length = capacity + 1;
                    continue;
                }
                if (res == 1605 || res == 1608)  // ERROR_UNKNOWN_PRODUCT, ERROR_UNKNOWN_PROPERTY
                    return null;
                throw new NativeException((int)res, String.Format("MsiGetProductInfoW({0}, {1}) failed",
                    productCode, property));
            }
        }
    }

    public static class CommandLine
    {
        /// <summary>Splits a command line into argv with the rules of CommandLineToArgvW.</summary>
        public static string[] Split(string commandLine)
        {
            // CommandLineToArgvW("") returns the path of the current executable, never what anyone wants.
            if (String.IsNullOrWhiteSpace(commandLine))
                return new string[0];

            int count;
            IntPtr argv = NativeMethods.CommandLineToArgvW(commandLine, out count);
            if (argv == IntPtr.Zero)
                throw new NativeException("CommandLineToArgvW() failed");
            try
            {
                string[] result = new string[count];
                for (int i = 0; i < count; i++)
                    result[i] = Marshal.PtrToStringUni(Marshal.ReadIntPtr(argv, i * IntPtr.Size));
                return result;
            }
            finally
            {
                NativeMethods.LocalFree(argv);
            }
        }
    }

    public static class Disk
    {
        /// <summary>Bytes available to the caller on the volume holding path (local or UNC).</summary>
        public static UInt64 GetFreeBytes(string path)
        {
            UInt64 available, total, free;
            if (!NativeMethods.GetDiskFreeSpaceExW(path, out available, out total, out free))
                throw new NativeException(String.Format("GetDiskFreeSpaceExW({0}) failed", path));
            return available;
        }
    }
}
