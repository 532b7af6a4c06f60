import Foundation
import FuzzSupport
import Tokenizers

// Chat templates: arbitrary bytes as a Jinja template, parsed and rendered with a short conversation.
// Any template either renders or gives a ChatTemplateError — never a trap, never another error type.
@_cdecl("FuzzChatTemplate_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let source = String(decoding: bytes(data, size), as: UTF8.self)
    let template: ChatTemplate
    do { template = try ChatTemplate(source) } catch is ChatTemplateError { return 0 } catch {
        require(false, "parse threw \(type(of: error))")
        return 0
    }
    let messages = [
        ["role": "system", "content": "Be terse."], ["role": "user", "content": "Hi {{ x }}"], ["role": "assistant", "content": "Hello"]
    ]
    for add in [true, false] {
        do {
            _ = try template.render(messages: messages, addGenerationPrompt: add, bosToken: "<s>", eosToken: "</s>")
        } catch is ChatTemplateError {
        } catch { require(false, "render threw \(type(of: error))") }
    }
    return 0
}
