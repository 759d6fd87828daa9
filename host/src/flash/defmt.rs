//! defmt decoding: the firmware's byte stream, read with the table in its ELF, into text lines.

use super::FlashError;

/// Decodes a defmt byte stream with the firmware's table into text lines.
pub fn decode_defmt(elf: &[u8], stream: &[u8]) -> Result<Vec<String>, FlashError> {
    let table = defmt_decoder::Table::parse(elf)
        .map_err(|e| FlashError::Defmt(e.to_string()))?
        .ok_or_else(|| FlashError::Defmt("the firmware has no defmt table".into()))?;
    let mut dec = table.new_stream_decoder();
    dec.received(stream);
    let mut lines = vec![];
    loop {
        match dec.decode() {
            Ok(frame) => lines.push(frame.display_message().to_string()),
            Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
            Err(defmt_decoder::DecodeError::Malformed) => {
                lines.push("<malformed defmt frame>".into());
                break;
            }
        }
    }
    Ok(lines)
}
