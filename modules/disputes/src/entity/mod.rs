pub mod dispute;
pub mod evidence;
