//! Verilog -> cached per-design shared library (`lib<key>.so`) exporting the `skm_*` ABI.
//!
//! Steps on a cache miss, all inside a private temporary directory of the cache:
//! 1. `verilator --xml-only` -> the top's ports ([`crate::ports`]);
//! 2. `verilator --cc` -> the model's C++ and its makefile (`Vskm.mk`; file names are hashed by
//!    Verilator, so nothing here names them: Verilator's own makefile compiles them);
//! 3. the generated wrapper ([`crate::wrapper`]) plus a 5-line makefile `skm.mk` that includes
//!    `Vskm.mk` and links `wrapper + Vskm__ALL.a + Verilator runtime` into one `-shared` library
//!    with Verilator's own link flags (`-lz` for FST, threads);
//! 4. rename the directory to `<cache>/<key>/`: a reader sees either nothing or a complete
//!    library. A build holds a lock on its key (`<cache>/.locks/`), so a second build of the
//!    same design, in another thread or process, waits and then loads the first one's library
//!    (parallel tests and sweeps that share a design compile it once); should two builds still
//!    meet (a cache on a file system without `flock`), one rename wins and the other's work is
//!    discarded.
//!
//! The Verilator runtime (`verilated.cpp` ...: ~10 s of compiling) depends only on Verilator and
//! the flags, so its objects are cached once under `<cache>/runtime-<key>/` the same way.
//!
//! `make` runs with one job per available core, and the Verilator and C++ settings depend on the
//! design's size ([`BuildProfile`]): a big design (the fp16 8x8 top) is split into many smaller
//! C++ files compiled at a lower optimization level, which costs some simulation speed but turns
//! a 15+ minute single-file compile into a few minutes. Every step runs in its own process group
//! and is stopped with the whole group when the build is interrupted ([`crate::interrupt`]);
//! [`BuildOptions::observer`] hears the stage and the compiled-file count about once a second.

use crate::error::{Result, SimError};
use crate::interrupt::BuildGuard;
use crate::ports::{match_ports, parse_header_ports, parse_xml_ports, PortInfo};
use crate::verilator::{run_logged, Verilator};
use crate::wrapper::{wrapper_cpp, WRAPPER_VERSION};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Environment variable overriding the cache directory.
pub const CACHE_ENV: &str = "SHIFTKIT_SIM_CACHE";

/// Waveform format compiled into the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TraceFormat {
    /// FST when zlib's header is available (FST needs it), else VCD; no tracing for designs
    /// built with [`BuildProfile::Large`] (the tracing code would double their compile time):
    /// ask for `Fst` or `Vcd` to trace those.
    #[default]
    Auto,
    Fst,
    Vcd,
    /// No tracing code at all (slightly faster evaluation; `Model::trace` fails).
    Off,
}

/// How to build a model. `Default` is what `Model::build` callers normally want.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub trace: TraceFormat,
    /// Cache directory; default `$SHIFTKIT_SIM_CACHE`, else `$XDG_CACHE_HOME/shiftkit/verilator`,
    /// else `~/.cache/shiftkit/verilator`.
    pub cache_dir: Option<PathBuf>,
    /// Verilator binary; default `$SHIFTKIT_VERILATOR`, else `verilator` on `PATH`.
    pub verilator: Option<PathBuf>,
    /// Extra Verilator arguments (`-GWIDTH=8`, `-DFOO` ...), part of the cache key.
    pub verilator_args: Vec<String>,
    /// Told the stage of a build about once a second (nothing is reported for a cache hit).
    pub observer: Option<BuildObserver>,
    /// Force a profile instead of choosing it by design size (`SHIFTKIT_SIM_PROFILE=small|large`
    /// does the same from the environment): to measure what the large profile costs.
    pub profile: Option<BuildProfile>,
}

/// Environment variable forcing the build profile (`small` or `large`).
pub const PROFILE_ENV: &str = "SHIFTKIT_SIM_PROFILE";
/// Environment variable overriding the number of `make` jobs (default: the available cores).
pub const JOBS_ENV: &str = "SHIFTKIT_SIM_JOBS";

/// A build step, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildStage {
    /// `verilator --xml-only`: the top's ports.
    Ports,
    /// `verilator --cc`: the model's C++.
    Verilate,
    /// Compiling the Verilator runtime (once per Verilator version and flags).
    Runtime,
    /// Compiling the model's C++ and linking the library.
    Compile,
}

impl BuildStage {
    pub fn describe(self) -> &'static str {
        match self {
            BuildStage::Ports => "reading the ports (verilator --xml-only)",
            BuildStage::Verilate => "generating C++ (verilator --cc)",
            BuildStage::Runtime => "compiling the Verilator runtime",
            BuildStage::Compile => "compiling and linking the model",
        }
    }
}

/// Where a build is, for [`BuildObserver`]s.
#[derive(Clone, Debug)]
pub struct BuildProgress {
    pub stage: BuildStage,
    /// Since the build started.
    pub elapsed: Duration,
    /// In the `Compile` stage: C++ files of the model compiled so far, and how many there are.
    pub files_done: usize,
    pub files_total: usize,
    pub profile: BuildProfile,
    /// Size of the Verilog sources (what picked the profile).
    pub verilog_bytes: usize,
    pub jobs: usize,
}

/// A callback for build progress; called from the building thread.
#[derive(Clone)]
pub struct BuildObserver(pub Arc<dyn Fn(&BuildProgress) + Send + Sync>);

impl BuildObserver {
    pub fn new(f: impl Fn(&BuildProgress) + Send + Sync + 'static) -> Self {
        BuildObserver(Arc::new(f))
    }
}

impl std::fmt::Debug for BuildObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BuildObserver")
    }
}

/// Verilator and compiler settings, picked by design size (part of the cache key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuildProfile {
    /// Few statements: one C++ file per class, optimized (fast simulation, compiles in seconds).
    Small,
    /// Many statements (the 8x8 tops and larger): many small C++ files so that every core compiles, at a
    /// lower optimization level (GCC's time grows much faster than linearly with function size).
    Large,
}

impl BuildProfile {
    /// Verilog text above this size (bytes, all sources) builds with [`BuildProfile::Large`].
    pub const LARGE_ABOVE_BYTES: usize = LARGE_ABOVE_BYTES;

    pub fn name(self) -> &'static str {
        match self {
            BuildProfile::Small => "small",
            BuildProfile::Large => "large",
        }
    }

    fn for_sources(sources: &[SourceFile], forced: Option<BuildProfile>) -> BuildProfile {
        if let Some(p) = forced {
            return p;
        }
        match std::env::var(PROFILE_ENV).as_deref() {
            Ok("small") => return BuildProfile::Small,
            Ok("large") => return BuildProfile::Large,
            _ => {}
        }
        let bytes: usize = sources.iter().map(|s| s.text.len()).sum();
        if bytes > LARGE_ABOVE_BYTES {
            BuildProfile::Large
        } else {
            BuildProfile::Small
        }
    }

    fn verilator_flags(self) -> &'static [&'static str] {
        match self {
            BuildProfile::Small => &["--cc", "-O2"],
            BuildProfile::Large => LARGE_VERILATOR_FLAGS,
        }
    }

    fn make_vars(self) -> &'static [&'static str] {
        match self {
            BuildProfile::Small => &["OPT_FAST=-O2", "OPT_SLOW=-O1", "OPT_GLOBAL=-O2"],
            BuildProfile::Large => LARGE_MAKE_VARS,
        }
    }
}

/// `make` jobs: `$SHIFTKIT_SIM_JOBS`, else the cores this process may use.
fn make_jobs() -> usize {
    std::env::var(JOBS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&j| j > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// One Verilog file by name and text. Headers (`.vh`, `.svh`) are made available to
/// `` `include `` but not passed to Verilator as sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

impl SourceFile {
    fn is_header(&self) -> bool {
        self.name.ends_with(".vh") || self.name.ends_with(".svh")
    }
}

/// Read the sources: each path is a file, or a directory whose `.v`/`.sv`/`.vh`/`.svh` files
/// (not recursive) are taken in name order.
pub fn read_sources<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<SourceFile>> {
    let mut files = vec![];
    for p in paths {
        let p = p.as_ref();
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(SimError::io("cannot read directory", p))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && f.extension()
                            .is_some_and(|x| ["v", "sv", "vh", "svh"].iter().any(|e| x == *e))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(SimError::Sources(format!(
                    "{} holds no .v or .sv files",
                    p.display()
                )));
            }
            files.extend(found);
        } else {
            files.push(p.to_path_buf());
        }
    }
    files
        .iter()
        .map(|f| {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| SimError::Sources(format!("{} is not a file", f.display())))?;
            let text =
                std::fs::read_to_string(f).map_err(SimError::io("cannot read Verilog", f))?;
            Ok(SourceFile { name, text })
        })
        .collect()
}

/// A model library on disk.
#[derive(Clone, Debug)]
pub struct BuiltLibrary {
    pub path: PathBuf,
    pub key: String,
    /// Found in the cache (nothing was compiled).
    pub cached: bool,
    /// Wall time of this call, lookup or build.
    pub elapsed: Duration,
}

/// Verilator flags of each profile (part of the key). `-O2` is Verilator's optimization level;
/// the C++ levels are make variables of Verilator's makefile.
/// (`-Wno-fatal`, `--prefix Vskm` and the top are added to every Verilator run.)
const LARGE_VERILATOR_FLAGS: &[&str] = &[
    "--cc",
    "-O2",
    "--output-split",
    "3000",
    "--output-split-cfuncs",
    "3000",
];
const LARGE_MAKE_VARS: &[&str] = &["OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1"];
const LARGE_ABOVE_BYTES: usize = 500_000;
/// `-fPIC` for the shared library; hidden visibility so that only `skm_*` is exported and two
/// design libraries in one process never bind to each other's `Vskm` or runtime.
const CFLAGS: &str = "-fPIC -fvisibility=hidden -fvisibility-inlines-hidden";

/// An exclusive `flock` on `<cache>/.locks/<name>.lock`, held while `name` is built. `flock`
/// locks belong to an open file, so two threads of one process exclude each other as two
/// processes do, and the kernel releases the lock however its holder ends. Waiting polls, so
/// that an interrupting signal ends the wait ([`crate::interrupt`]).
struct BuildLock {
    _file: std::fs::File,
}

impl BuildLock {
    fn acquire(cache: &Path, name: &str) -> Result<BuildLock> {
        use std::os::fd::AsRawFd;
        let dir = cache.join(".locks");
        std::fs::create_dir_all(&dir).map_err(SimError::io("cannot create", &dir))?;
        let path = dir.join(format!("{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(SimError::io("cannot open", &path))?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(BuildLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK)
                && err.kind() != std::io::ErrorKind::Interrupted
            {
                return Err(SimError::io("cannot lock", &path)(err));
            }
            if crate::interrupt::interrupted().is_some() {
                return Err(SimError::Interrupted);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Build the model library of `top` from `sources`, or find it in the cache.
pub fn build_library(
    sources: &[SourceFile],
    top: &str,
    opts: &BuildOptions,
) -> Result<BuiltLibrary> {
    let start = Instant::now();
    if sources.iter().all(SourceFile::is_header) {
        return Err(SimError::Sources("no Verilog sources given".into()));
    }
    if top.is_empty() || !top.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(SimError::Sources(format!(
            "`{top}` is not a plain module name"
        )));
    }
    for (i, s) in sources.iter().enumerate() {
        if s.name.is_empty() || s.name.contains('/') || s.name.starts_with('.') {
            return Err(SimError::Sources(format!(
                "bad source file name `{}`",
                s.name
            )));
        }
        if sources[..i].iter().any(|o| o.name == s.name) {
            return Err(SimError::Sources(format!(
                "two sources are named `{}`",
                s.name
            )));
        }
    }
    let verilator = Verilator::find(opts.verilator.as_deref())?;
    let cache = cache_dir(opts);
    std::fs::create_dir_all(&cache)
        .map_err(SimError::io("cannot create cache directory", &cache))?;
    let profile = BuildProfile::for_sources(sources, opts.profile);
    let key = design_key(sources, top, opts, &verilator, profile);
    let lib = cache.join(&key).join(format!("lib{key}.so"));
    let cached = |lib: PathBuf, key: String| BuiltLibrary {
        path: lib,
        key,
        cached: true,
        elapsed: start.elapsed(),
    };
    if lib.is_file() {
        return Ok(cached(lib, key));
    }
    // A second build of this design (another thread or process) waits here for the first and
    // then finds its library, instead of compiling the same model again.
    let _lock = BuildLock::acquire(&cache, &key)?;
    if lib.is_file() {
        return Ok(cached(lib, key));
    }
    remove_stale_temps(&cache);
    let guard = BuildGuard::new();
    let result = TempDir::new(&cache, &key).and_then(|tmp| {
        let ctx = StepContext {
            top,
            v: &verilator,
            cache: &cache,
            profile,
            verilog_bytes: sources.iter().map(|s| s.text.len()).sum(),
            jobs: make_jobs(),
            start,
            observer: opts.observer.clone(),
        };
        match build_in(tmp.path(), sources, opts, &ctx, &key) {
            Ok(()) => tmp.publish(&cache.join(&key)),
            Err(SimError::Interrupted) => Err(SimError::Interrupted),
            Err(e) => Err(keep_failed_log(e, tmp, &cache, &key)),
        }
    });
    // Dropped above: the temporary folder is gone. An interrupting signal now ends the process.
    guard.finish();
    result?;
    Ok(BuiltLibrary {
        path: lib,
        key,
        cached: false,
        elapsed: start.elapsed(),
    })
}

/// The cache directory for `opts` (see [`BuildOptions::cache_dir`]).
pub fn cache_dir(opts: &BuildOptions) -> PathBuf {
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    opts.cache_dir
        .clone()
        .or_else(|| env(CACHE_ENV))
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("shiftkit/verilator")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/shiftkit/verilator")))
        .unwrap_or_else(|| std::env::temp_dir().join("shiftkit-verilator"))
}

/// Hash of everything the library depends on. Names and lengths are hashed too, so moving text
/// between files changes the key.
fn design_key(
    sources: &[SourceFile],
    top: &str,
    opts: &BuildOptions,
    v: &Verilator,
    profile: BuildProfile,
) -> String {
    let mut h = Sha256::new();
    let mut field = |s: &[u8]| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s);
    };
    field(format!("shiftkit-sim wrapper v{WRAPPER_VERSION}").as_bytes());
    field(v.version.as_bytes());
    field(top.as_bytes());
    field(format!("{:?}", opts.trace).as_bytes());
    let flags = profile.verilator_flags().iter().chain(profile.make_vars());
    for f in flags.chain([&CFLAGS]) {
        field(f.as_bytes());
    }
    for a in &opts.verilator_args {
        field(a.as_bytes());
    }
    for s in sources {
        field(s.name.as_bytes());
        field(s.text.as_bytes());
    }
    hex(&h.finalize()[..10])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What every step of one build needs.
struct StepContext<'a> {
    top: &'a str,
    v: &'a Verilator,
    cache: &'a Path,
    profile: BuildProfile,
    verilog_bytes: usize,
    jobs: usize,
    start: Instant,
    observer: Option<BuildObserver>,
}

impl StepContext<'_> {
    fn report(&self, stage: BuildStage, files_done: usize, files_total: usize) {
        if let Some(o) = &self.observer {
            (o.0)(&BuildProgress {
                stage,
                elapsed: self.start.elapsed(),
                files_done,
                files_total,
                profile: self.profile,
                verilog_bytes: self.verilog_bytes,
                jobs: self.jobs,
            });
        }
    }

    /// Run one step of `stage`, reporting it now and about once a second.
    fn run(&self, stage: BuildStage, cmd: &mut Command, log: &Path) -> Result<()> {
        self.report(stage, 0, 0);
        run_logged(cmd, log, self.top, &mut || self.report(stage, 0, 0))
    }

    /// `make` in Verilator's output directory with this profile's optimization levels.
    fn make(&self, obj: &Path) -> Command {
        make(obj, self.profile, self.jobs)
    }
}

/// The build proper, in `dir`.
fn build_in(
    dir: &Path,
    sources: &[SourceFile],
    opts: &BuildOptions,
    ctx: &StepContext,
    key: &str,
) -> Result<()> {
    let (top, v) = (ctx.top, ctx.v);
    let log = dir.join("build.log");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(SimError::io("cannot create", &src))?;
    for s in sources {
        let p = src.join(&s.name);
        std::fs::write(&p, &s.text).map_err(SimError::io("cannot write", &p))?;
    }
    let verilog: Vec<PathBuf> = sources
        .iter()
        .filter(|s| !s.is_header())
        .map(|s| src.join(&s.name))
        .collect();
    let common = |cmd: &mut Command, mdir: &Path| {
        cmd.args([
            "-Wno-fatal",
            "--prefix",
            "Vskm",
            "--top-module",
            top,
            "--Mdir",
        ])
        .arg(mdir)
        .arg(format!("-I{}", src.display()))
        .args(&opts.verilator_args)
        .args(&verilog);
    };

    // 1. Ports, from the XML view.
    let xdir = dir.join("xml");
    let mut cmd = Command::new(&v.bin);
    cmd.arg("--xml-only");
    common(&mut cmd, &xdir);
    ctx.run(BuildStage::Ports, &mut cmd, &log)?;
    let xml_path = xdir.join("Vskm.xml");
    let xml = std::fs::read_to_string(&xml_path).map_err(SimError::io("cannot read", &xml_path))?;
    let ports_err = |detail| SimError::Ports {
        top: top.to_string(),
        detail,
    };
    let xml_ports = parse_xml_ports(&xml, top).map_err(ports_err)?;

    // 2. The model's C++.
    let obj = dir.join("obj");
    let mut cmd = Command::new(&v.bin);
    cmd.args(ctx.profile.verilator_flags())
        .args(["-CFLAGS", CFLAGS]);
    match resolve_trace(opts.trace, ctx.profile) {
        TraceFormat::Fst => {
            cmd.arg("--trace-fst");
        }
        TraceFormat::Vcd => {
            cmd.arg("--trace");
        }
        _ => {}
    }
    common(&mut cmd, &obj);
    ctx.run(BuildStage::Verilate, &mut cmd, &log)?;
    let header_path = obj.join("Vskm.h");
    let header =
        std::fs::read_to_string(&header_path).map_err(SimError::io("cannot read", &header_path))?;
    let ports = match_ports(&xml_ports, &parse_header_ports(&header)).map_err(ports_err)?;

    // 3. Wrapper, runtime, link.
    let wrapper = wrapper_cpp(top, &ports);
    write(&obj.join("skm_wrapper.cpp"), &wrapper)?;
    write(&obj.join("skm.mk"), SKM_MK)?;
    let runtime = runtime_objects(&obj, &log, ctx)?;
    let lib = format!("lib{key}.so");
    let mut cmd = ctx.make(&obj);
    cmd.arg(format!("SKM_LIB={lib}"))
        .arg(format!("SKM_RUNTIME={}", join_paths(&runtime)))
        .arg(&lib);
    let total = model_sources(&obj).len();
    ctx.report(BuildStage::Compile, 0, total);
    run_logged(&mut cmd, &log, top, &mut || {
        ctx.report(BuildStage::Compile, compiled_count(&obj), total)
    })?;

    // Keep the library, the log, the wrapper and a readable port table; drop the rest.
    let final_lib = dir.join(&lib);
    std::fs::rename(obj.join(&lib), &final_lib).map_err(SimError::io("cannot move", &final_lib))?;
    write(&dir.join("skm_wrapper.cpp"), &wrapper)?;
    write(
        &dir.join("ports.txt"),
        &port_table(top, ports.iter().map(|p| &p.info)),
    )?;
    for d in [&obj, &xdir, &src] {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(())
}

/// Included after Verilator's makefile: adds a rule to print the runtime objects and the command
/// that compiles them (the runtime cache key), and the link of the shared library.
const SKM_MK: &str = "# Generated by shiftkit-sim.
include Vskm.mk
skm-runtime-info:
\t@echo $(VK_GLOBAL_OBJS)
\t@echo $(CXX) $(CXXFLAGS) $(CPPFLAGS) $(OPT_GLOBAL) $(LDFLAGS) $(LDLIBS)
$(SKM_LIB): skm_wrapper.o $(VM_PREFIX)__ALL.a
\t$(CXX) -shared $(LDFLAGS) -Wl,-Bsymbolic -Wl,--no-undefined -o $@ skm_wrapper.o $(VM_PREFIX)__ALL.a $(SKM_RUNTIME) $(LDLIBS)
";

/// The model's C++ files in Verilator's output directory (with the wrapper).
fn model_sources(obj: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(obj) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cpp"))
        .collect()
}

/// How many of the model's C++ files have their object file.
fn compiled_count(obj: &Path) -> usize {
    model_sources(obj)
        .iter()
        .filter(|p| p.with_extension("o").is_file())
        .count()
}

/// `make` in Verilator's output directory with `jobs` jobs and `profile`'s optimization levels.
fn make(obj: &Path, profile: BuildProfile, jobs: usize) -> Command {
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(obj)
        .args(["--no-print-directory", "-f", "skm.mk"])
        .arg(format!("-j{jobs}"))
        .args(profile.make_vars());
    // A parent `make -j` (e.g. cargo under make) must not hand its job server to this build.
    cmd.env_remove("MAKEFLAGS").env_remove("MFLAGS");
    cmd
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Verilator runtime objects for this model's flags: cached, or compiled now and cached.
fn runtime_objects(obj: &Path, log: &Path, ctx: &StepContext) -> Result<Vec<PathBuf>> {
    let (top, v, cache) = (ctx.top, ctx.v, ctx.cache);
    let mut info = ctx.make(obj);
    info.arg("-s").arg("skm-runtime-info");
    let out = info.output().map_err(|e| SimError::BuildFailed {
        top: top.to_string(),
        first_error: format!("cannot run make: {e}"),
        log: log.to_path_buf(),
    })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let objs: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !out.status.success() || objs.is_empty() {
        return Err(SimError::BuildFailed {
            top: top.to_string(),
            first_error: "Verilator's makefile lists no runtime objects".into(),
            log: log.to_path_buf(),
        });
    }
    let mut h = Sha256::new();
    h.update(v.version.as_bytes());
    h.update(text.as_bytes());
    let key = hex(&h.finalize()[..10]);
    let dir = cache.join(format!("runtime-{key}"));
    let paths: Vec<PathBuf> = objs.iter().map(|o| dir.join(o)).collect();
    if paths.iter().all(|p| p.is_file()) {
        return Ok(paths);
    }
    let _lock = BuildLock::acquire(cache, &format!("runtime-{key}"))?;
    if paths.iter().all(|p| p.is_file()) {
        return Ok(paths);
    }
    let mut cmd = ctx.make(obj);
    cmd.args(&objs);
    ctx.run(BuildStage::Runtime, &mut cmd, log)?;
    let tmp = TempDir::new(cache, &format!("runtime-{key}"))?;
    for o in &objs {
        let to = tmp.path().join(o);
        std::fs::copy(obj.join(o), &to).map_err(SimError::io("cannot copy", &to))?;
    }
    tmp.publish(&dir)?;
    Ok(paths)
}

/// FST needs zlib at compile and link time; `Auto` picks it when the header is there (and
/// nothing for large designs).
fn resolve_trace(t: TraceFormat, profile: BuildProfile) -> TraceFormat {
    match t {
        TraceFormat::Auto if profile == BuildProfile::Large => TraceFormat::Off,
        TraceFormat::Auto if zlib_available() => TraceFormat::Fst,
        TraceFormat::Auto => TraceFormat::Vcd,
        t => t,
    }
}

fn zlib_available() -> bool {
    let mut cmd = Command::new(std::env::var_os("CXX").unwrap_or_else(|| "g++".into()));
    cmd.args(["-x", "c++", "-fsyntax-only", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"#include <zlib.h>\n");
    }
    child.wait().is_ok_and(|s| s.success())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(SimError::io("cannot write", path))
}

/// `name width dir` lines, for people looking into the cache.
pub(crate) fn port_table<'a>(top: &str, ports: impl Iterator<Item = &'a PortInfo>) -> String {
    let mut s = format!("# ports of {top}: name width direction\n");
    for p in ports {
        s.push_str(&format!("{} {} {:?}\n", p.name, p.width, p.dir));
    }
    s
}

/// A failed build's directory is kept as `<cache>/failed-<key>/` so the log outlives the call.
fn keep_failed_log(e: SimError, tmp: TempDir, cache: &Path, key: &str) -> SimError {
    let SimError::BuildFailed {
        top, first_error, ..
    } = e
    else {
        return e;
    };
    let kept = cache.join(format!("failed-{key}"));
    let _ = std::fs::remove_dir_all(&kept);
    let log = match tmp.keep_as(&kept) {
        Ok(()) => kept.join("build.log"),
        Err(p) => p.join("build.log"),
    };
    SimError::BuildFailed {
        top,
        first_error,
        log,
    }
}

/// Temporary directories left by builds that were killed (SIGKILL leaves no time to clean up):
/// those of processes that no longer exist, and anything older than a day (no build takes that
/// long), are removed, best effort.
fn remove_stale_temps(cache: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    let day = Duration::from_secs(24 * 3600);
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(".tmp-") {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        let owner_gone =
            temp_owner(&name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if old || owner_gone {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The process id in a temporary directory's name `.tmp-<tag>-<pid>-<n>`.
fn temp_owner(name: &str) -> Option<u32> {
    let mut parts = name.rsplit('-');
    parts.next()?.parse::<u64>().ok()?;
    parts.next()?.parse().ok()
}

/// A uniquely named directory in the cache, removed on drop unless published or kept.
struct TempDir(Option<PathBuf>);

impl TempDir {
    fn new(cache: &Path, tag: &str) -> Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = cache.join(format!(".tmp-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(SimError::io("cannot create", &p))?;
        Ok(TempDir(Some(p)))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Atomically move to `dest`. If another builder got there first, its (identical) result
    /// stays and ours is dropped.
    fn publish(mut self, dest: &Path) -> Result<()> {
        let Some(p) = self.0.take() else {
            return Ok(());
        };
        match std::fs::rename(&p, dest) {
            Ok(()) => Ok(()),
            Err(_) if dest.is_dir() => {
                let _ = std::fs::remove_dir_all(&p);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&p);
                Err(SimError::io("cannot publish build to", dest)(e))
            }
        }
    }

    /// Move to `dest` (or leave in place, returning where it is).
    fn keep_as(mut self, dest: &Path) -> std::result::Result<(), PathBuf> {
        let Some(p) = self.0.take() else {
            return Ok(());
        };
        std::fs::rename(&p, dest).map_err(|_| p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_folders_name_their_owner_and_profiles_follow_design_size() {
        assert_eq!(temp_owner(".tmp-0a1b2c-4242-0"), Some(4242));
        assert_eq!(temp_owner(".tmp-runtime-0a1b2c-77-3"), Some(77));
        assert_eq!(temp_owner(".tmp-junk"), None);
        let src = |n: usize| SourceFile {
            name: "a.v".into(),
            text: "x".repeat(n),
        };
        let pick = |n| BuildProfile::for_sources(&[src(n)], None);
        if std::env::var_os(PROFILE_ENV).is_none() {
            assert_eq!(pick(1000), BuildProfile::Small);
            assert_eq!(pick(LARGE_ABOVE_BYTES + 1), BuildProfile::Large);
        }
        let forced = BuildProfile::for_sources(&[src(1)], Some(BuildProfile::Large));
        assert_eq!(forced, BuildProfile::Large);
    }
}
