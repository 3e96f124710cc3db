pub mod qido;
