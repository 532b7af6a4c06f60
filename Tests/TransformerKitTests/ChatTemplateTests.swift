import Foundation
import Testing
@testable import Tokenizers

/// The Jinja subset against Jinja2 itself, configured as Hugging Face's `apply_chat_template`
/// (`Fixtures/chat-templates/make_chat_template_fixture.py`): Qwen2.5's and SmolLM2's templates and
/// three written to exercise what other templates use, each on several conversations.
@Suite struct ChatTemplateTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            var messages: [[String: String]]
            var add_generation_prompt: Bool
            var rendered: String?
            var error: String?
        }
        struct Template: Decodable { var name: String; var source: String; var cases: [Case] }
        var templates: [Template]
    }

    static func fixture() throws -> Fixture {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/chat-templates/chat_templates", withExtension: "json"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    @Test func rendersAsJinja2() throws {
        let f = try Self.fixture()
        #expect(f.templates.map(\.name) == ["qwen2.5", "smollm2", "alternating", "namespace", "expressions"])
        var checked = 0, refused = 0
        for t in f.templates {
            let template = try ChatTemplate(t.source)
            for c in t.cases {
                let render = {
                    try template.render(
                        messages: c.messages, addGenerationPrompt: c.add_generation_prompt, bosToken: "<bos>", eosToken: "<eos>")
                }
                if let want = c.rendered {
                    #expect(try render() == want, "\(t.name), \(c.messages.count) messages")
                    checked += 1
                } else {
                    let message = try #require(c.error)
                    #expect {
                        try render()
                    } throws: { ($0 as? ChatTemplateError)?.message.contains(message) == true }
                    refused += 1
                }
            }
        }
        #expect(checked == 38 && refused == 2)
    }

    @Test func unsupportedConstructsAreNamedWithTheirLine() {
        func message(_ source: String) -> String {
            do {
                _ = try ChatTemplate(source).render(messages: [["role": "user", "content": "hi"]], addGenerationPrompt: true)
                return ""
            } catch { return "\(error)" }
        }
        #expect(
            message("a\n{% macro m() %}{% endmacro %}") == "chat template line 2: {% macro %} is not supported (this reads if, for and set)"
        )
        #expect(message("{{ messages | wordcount }}") == #"chat template line 1: the filter "| wordcount" is not supported"#)
        #expect(message("{{ x is divisibleby(3) }}").contains(#"the test "is divisibleby" with arguments is not supported"#))
        #expect(message("{{ x is odd }}").contains(#"the test "is odd" is not supported"#))
        #expect(message("{% if true %}no end") == "chat template line 1: the template ends before {% elif / else / endif %}")
        #expect(message("{{ 'open ") == "line 1: a string is not closed")
        #expect(message("{{ messages[0].content.title() }}").contains("the method title() of a string is not supported"))
        #expect(message("{{ strftime_now('%Y') }}").contains("the function strftime_now() is not supported"))
        #expect(message("{{ raise_exception('no system messages') }}") == "the chat template refuses these messages: no system messages")
        #expect(message("{% for x in 3 %}{% endfor %}").contains("cannot loop over a number"))
        #expect(message("{{ messages[0].content - 1 }}").contains(#"cannot apply "-" to a string and a number"#))
    }
}
